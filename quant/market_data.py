"""Market data as of a date: the one loader every run, replay, command and notebook reads.

``MarketData.load(con, cfg, as_of)`` reads the daily bars of one symbol from its preferred
source (``cfg.store.source_priority``, never a built-in default) with session <= ``as_of`` and
the intraday bars of the configured instrument up to the same session; the model inputs and
labels are derived from those bars on first use (``windows``, ``labels``), so a caller that only
forecasts one session never builds the whole history's windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Final

import duckdb
import numpy as np
import polars as pl

from feeds.read import NoDataError, daily_bars, resolve_source
from models.config import FeatureSpec
from models.features import FeatureError, Windows, build_windows, spec_for_series
from models.inputs import load_intraday
from models.labels import Labelled, labelled, next_direction

if TYPE_CHECKING:
    from quant.config import QuantConfig


class _FromConfig:
    def __repr__(self) -> str:
        return "FROM_CONFIG"


FROM_CONFIG: Final = _FromConfig()  # intraday instrument: the configuration's (see ``load``)


@dataclass(frozen=True)
class MarketData:
    """Everything a run on ``as_of`` may read: bars up to its close, labelled windows."""

    as_of: date
    daily: pl.DataFrame
    intraday: pl.DataFrame | None
    features: FeatureSpec  # the configured spec, before the amount policy
    intraday_symbol: str | None = None  # instrument of the intraday bars (None: none read)

    @classmethod
    def load(
        cls,
        con: duckdb.DuckDBPyConnection,
        cfg: QuantConfig,
        as_of: date | None,
        *,
        symbol: str | None = None,
        intraday_symbol: str | _FromConfig | None = FROM_CONFIG,
        features: FeatureSpec | None = None,
    ) -> MarketData:
        """Bars of ``symbol`` (default ``cfg.data.symbol``) from its preferred source with
        session <= ``as_of`` (None: every stored session).

        ``intraday_symbol``: the minute instrument; by default ``cfg.data.intraday_symbol`` when
        ``cfg.pipeline.use_intraday``, else none; None reads none.  ``features``: the spec the
        windows are built with (default ``cfg.forecast.features``; its ``intraday_minutes`` is
        the bar length read).  ``NoDataError`` when the symbol has no daily bars by then.
        """
        sym = symbol or cfg.data.symbol
        spec = features or cfg.forecast.features
        isym = intraday_symbol
        if isinstance(isym, _FromConfig):
            isym = cfg.data.intraday_symbol if cfg.pipeline.use_intraday else None
        source = resolve_source(con, sym, "1d", cfg.store.source_priority)
        daily = daily_bars(con, sym, end=as_of, source=source)
        if daily.is_empty():
            raise NoDataError(f"no daily bars of {sym} [{source}] up to {as_of}")
        last = daily.get_column("session").max()
        assert isinstance(last, date)
        intraday = None
        if isym is not None:
            got = load_intraday(
                con, isym, spec.intraday_minutes, end=as_of, priority=cfg.store.source_priority
            )
            intraday = None if got.is_empty() else got
        return cls(as_of or last, daily, intraday, spec, isym)

    @classmethod
    def of_bars(
        cls,
        daily: pl.DataFrame,
        intraday: pl.DataFrame | None,
        features: FeatureSpec,
        *,
        intraday_symbol: str | None = None,
    ) -> MarketData:
        """Market data of bars already in memory (as of their last daily session)."""
        if daily.is_empty():
            raise FeatureError("no daily bars")
        end = daily.get_column("session").max()
        assert isinstance(end, date)
        return cls(end, daily, intraday, features, intraday_symbol)

    @property
    def symbol(self) -> str:
        """The daily bars' symbol."""
        if "symbol" not in self.daily.columns:
            raise FeatureError("the daily bars carry no symbol column")
        return str(self.daily.get_column("symbol")[0])

    @cached_property
    def spec(self) -> FeatureSpec:
        """The configured spec after the amount policy (``spec_for_series``)."""
        return spec_for_series(self.daily, self.features)

    @cached_property
    def _labelled(self) -> Labelled:
        w = build_windows(self.daily, self.intraday, self.spec)
        return labelled(w, next_direction(self.daily, self.spec.horizon))

    @property
    def windows(self) -> Windows:
        """Raw inputs of every labelled session with a full window, chronological."""
        return self._labelled.windows

    @property
    def labels(self) -> np.ndarray:
        """Next-session direction of each window (int64)."""
        return self._labelled.labels

    @cached_property
    def sessions(self) -> list[date]:
        return self.windows.sessions.astype(object).tolist()

    @cached_property
    def label_by_session(self) -> dict[date, int]:
        """The label of every labelled session (for lining up forecasts made elsewhere)."""
        return dict(zip(self.sessions, self.labels.tolist(), strict=True))

    @cached_property
    def last_bar_ts(self) -> datetime:
        """End of the newest daily bar (UTC)."""
        return self.bar_end(self.as_of)

    def bar_end(self, session: date) -> datetime:
        """End (UTC) of the newest daily bar with session <= ``session``."""
        ts = self.daily.filter(pl.col("session") <= session).get_column("ts").max()
        if not isinstance(ts, datetime):
            raise FeatureError(f"no daily bar on or before {session}")
        return ts.astimezone(UTC)

    def upto(self, session: date, sessions: int) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """The last ``sessions`` daily bars with session <= ``session`` and the intraday bars of
        those sessions: the tail a forecast for ``session`` needs (it rebuilds its features)."""
        daily = self.daily.filter(pl.col("session") <= session).tail(sessions)
        intraday = self.intraday
        if intraday is not None and not daily.is_empty():
            intraday = intraday.filter(pl.col("session") >= daily["session"].min())
        return daily, intraday
