"""``MarketData.load``: the source priority comes from the configuration passed in, reads stop at
``as_of``; ``next_signal`` forecasts from the bars up to its decision session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import polars as pl
import pytest

from feeds.read import NoDataError
from feeds.store import open_store, transaction
from feeds.synthetic import SYNTHETIC_SYMBOL
from feeds.writer import write_bars
from quant.config import QuantConfig
from quant.market_data import MarketData
from quant.signals import next_signal, signals_between
from tests.quant.conftest import LAST, tiny_forecaster

AS_OF = date(2022, 6, 30)


def _with_second_source(cfg: QuantConfig) -> None:
    """The synthetic symbol's daily bars again under another source, closes shifted by +1."""
    con = open_store(cfg.store.path)
    try:
        daily = con.sql("SELECT * FROM bars_daily WHERE symbol = ?", params=[SYNTHETIC_SYMBOL]).pl()
        other = daily.with_columns(
            pl.lit("plain").alias("source"),
            pl.lit("1d").alias("frequency"),
            pl.col("close") + 1.0,
            pl.col("high") + 1.0,
        ).select(
            "symbol",
            "kind",
            "frequency",
            "source",
            "session",
            "ts",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "amount",
            "open_interest",
        )
        with transaction(con):
            write_bars(con, other, file_sha256=None)
    finally:
        con.close()


def test_the_source_priority_is_the_configured_one(make_env: Callable[..., QuantConfig]) -> None:
    cfg = make_env()
    _with_second_source(cfg)
    store = cfg.store.model_copy(update={"source_priority": ("synthetic", "plain")})
    synthetic_first = cfg.model_copy(update={"store": store})
    con = open_store(cfg.store.path, read_only=True)
    try:
        default = MarketData.load(con, cfg, AS_OF)  # the default priority: a named vendor first
        mine = MarketData.load(con, synthetic_first, AS_OF)
    finally:
        con.close()
    assert set(default.daily["source"]) == {"plain"} and set(mine.daily["source"]) == {"synthetic"}
    diff = (default.daily["close"] - mine.daily["close"]).to_list()
    assert diff == pytest.approx([1.0] * mine.daily.height)
    for d in (default, mine):
        assert d.daily["session"].max() == AS_OF and d.as_of == AS_OF
        assert d.last_bar_ts.date() == AS_OF and d.symbol == SYNTHETIC_SYMBOL
        assert len(d.windows) == len(d.labels) == len(d.sessions) > 0
        assert max(d.sessions) < AS_OF  # the as_of session's label settles after it


def test_no_bars_by_as_of_is_a_clear_error(make_env: Callable[..., QuantConfig]) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path, read_only=True)
    try:
        with pytest.raises(NoDataError, match="up to 2000-01-03"):
            MarketData.load(con, cfg, date(2000, 1, 3))
    finally:
        con.close()


def test_next_signal_reads_only_bars_up_to_its_session(
    make_env: Callable[..., QuantConfig],
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path)
    try:
        full = MarketData.load(con, cfg, LAST)
        early = MarketData.load(con, cfg, AS_OF)
        fc = tiny_forecaster()
        a = next_signal(full, fc, "v1", session=AS_OF)
        b = next_signal(early, fc, "v1")
        assert (a.decision_session, a.session) == (AS_OF, date(2022, 7, 1))
        assert a.forecast.p_up == b.forecast.p_up  # later bars change nothing
        assert a.last_bar_ts == b.last_bar_ts == early.last_bar_ts
        with transaction(con):
            sig = a.publish(con)
        assert signals_between(con, SYNTHETIC_SYMBOL) == [sig]
        assert sig.direction == ("up" if sig.p_up > 0.5 else "down")
    finally:
        con.close()
