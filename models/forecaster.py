"""The high-level forecaster: bars up to a decision session in, P(next session up) out.

The HTTP API calls it with bars a broker sends, the daily pipeline with bars from the store:

    fc = Forecaster.from_checkpoint("var/models/fused.pt", expect_spec=cfg.forecast.features)
    f = fc.predict(daily_bars, intraday_bars)        # decision session = last daily session
    f.p_up, f.session, f.gate, f.used_intraday

Bars after the decision time (the close of session t) are ignored; too little history, gaps,
NaN inputs or a model output that is not a probability raise instead of returning garbage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from torch import nn

from feeds.calendar import session_close
from feeds.schema import InstrumentKind
from models.checkpoint import Checkpoint, load
from models.config import FeatureSpec
from models.ensemble import EnsembleConfig
from models.features import FeatureError, Windows, build_windows
from models.lstm import LSTMConfig
from models.multiscale import MultiScaleConfig
from models.normalise import NormStats, apply_norm
from models.train import predict


@dataclass(frozen=True)
class Forecast:
    session: date  # decision session t; the forecast is for the next session's close vs t's
    p_up: float
    gate: float  # weight of the intraday branch (0 when no intraday bars were used)
    used_intraday: bool


def decision_time(session: date) -> datetime:
    """Close of ``session`` (tz-aware): the last instant whose bars a forecast may read."""
    return session_close(InstrumentKind.INDEX, session)


def visible(
    daily: pl.DataFrame, intraday: pl.DataFrame | None, session: date
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Daily bars with session <= t and intraday bars ending at or before t's close."""
    d = daily.filter(pl.col("session") <= session)
    if intraday is None:
        return d, None
    dt = intraday.schema["ts"]
    if not isinstance(dt, pl.Datetime) or dt.time_zone is None:
        raise FeatureError(f"intraday ts must be timezone-aware datetimes, got {dt}")
    return d, intraday.filter(pl.col("ts") <= decision_time(session).astimezone(UTC))


@dataclass
class Forecaster:
    model: nn.Module
    spec: FeatureSpec
    norm: NormStats
    name: str = "fused"
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, *, expect_spec: FeatureSpec | None = None
    ) -> Forecaster:
        """Load a checkpoint (see ``models.checkpoint.load`` for the errors it raises)."""
        ck = load(path, expect_spec=expect_spec)
        return cls(ck.model(), ck.spec, ck.norm, ck.name, ck.meta)

    def checkpoint(self, **meta: Any) -> Checkpoint:
        """This forecaster as a checkpoint (``meta`` is merged into its metadata)."""
        cfg = self.model.cfg
        if not isinstance(cfg, MultiScaleConfig | LSTMConfig | EnsembleConfig):
            raise TypeError(f"model {type(self.model).__name__} has no forecaster config")
        return Checkpoint(
            self.name, cfg, self.spec, self.norm, self.model.state_dict(), {**self.meta, **meta}
        )

    def predict_windows(self, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
        """P(up) [N] and intraday gate [N] of raw (un-normalised) ``windows``: standardised with
        this forecaster's statistics, then scored.  The one "score these windows" call."""
        return predict(self.model, apply_norm(windows, self.norm))

    def predict(
        self,
        daily: pl.DataFrame,
        intraday: pl.DataFrame | None = None,
        *,
        session: date | None = None,
    ) -> Forecast:
        """P(up) of the session after ``session`` (default: the last daily session given)."""
        if daily.is_empty():
            raise FeatureError("no daily bars")
        t = session or daily.get_column("session").max()
        assert isinstance(t, date)
        d, i = visible(daily, intraday, t)
        w = build_windows(d, i, self.spec, sessions=[t], strict=True)
        p, g = self.predict_windows(w)
        if not np.isfinite(p).all() or not ((p >= 0) & (p <= 1)).all():
            raise FeatureError(f"model produced a non-probability {p} for {t}")
        return Forecast(t, float(p[0]), float(g[0]), bool(w.has_intra[0]))
