"""A series without turnover, labels on the XSHG calendar, and the walk-forward split rule."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pytest

import models.selection as sel
import models.walkforward as wf
from feeds.calendar import next_trading_day, previous_trading_day
from models.config import ForecastConfig
from models.features import DAILY_FEATURES, FeatureError, build_windows, spec_for_series
from models.forecaster import Forecaster
from models.labels import next_direction
from tests.models.conftest import Market
from tests.support.demo import train_forecaster

AMOUNT_Z = DAILY_FEATURES.index("amount_z")


def _no_amount(daily: pl.DataFrame) -> pl.DataFrame:
    return daily.with_columns(pl.lit(None, pl.Float64).alias("amount"))


def test_spec_drops_amount_for_a_series_without_it(market: Market, cfg: ForecastConfig) -> None:
    assert spec_for_series(market.daily, cfg.features).use_amount is True
    assert spec_for_series(_no_amount(market.daily), cfg.features).use_amount is False
    assert spec_for_series(market.daily.drop("amount"), cfg.features).use_amount is False
    partial = market.daily.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("amount")).alias("amount")
    )
    assert spec_for_series(partial, cfg.features).use_amount is False


def test_without_amount_the_turnover_token_is_zero_and_the_rest_unchanged(
    market: Market, cfg: ForecastConfig
) -> None:
    spec = spec_for_series(_no_amount(market.daily), cfg.features)
    without = build_windows(_no_amount(market.daily), None, spec)
    with_amount = build_windows(market.daily, None, cfg.features)
    assert np.array_equal(without.sessions, with_amount.sessions)
    assert (without.x_daily[:, :, AMOUNT_Z] == 0).all()
    others = [i for i in range(len(DAILY_FEATURES)) if i != AMOUNT_Z]
    assert np.allclose(without.x_daily[:, :, others], with_amount.x_daily[:, :, others])


def test_a_model_trained_with_amount_refuses_bars_without_it(
    market: Market, cfg: ForecastConfig
) -> None:
    fc = train_forecaster(market.daily, market.intraday, cfg)
    assert fc.spec.use_amount is True
    with pytest.raises(FeatureError, match="trained with the turnover feature"):
        fc.predict(_no_amount(market.daily))


def test_a_model_trained_without_amount_records_it_and_ignores_amount(
    market: Market, cfg: ForecastConfig, tmp_path: Any
) -> None:
    fc = train_forecaster(_no_amount(market.daily), market.intraday, cfg)
    assert fc.spec.use_amount is False
    path = tmp_path / "m.pt"
    from models.checkpoint import save

    save(path, fc.checkpoint())
    back = Forecaster.from_checkpoint(path)
    assert back.spec.use_amount is False
    a = back.predict(_no_amount(market.daily)).p_up
    b = back.predict(market.daily).p_up  # amount present but never read
    assert a == b


def test_label_is_against_the_next_xshg_session_not_the_next_row(market: Market) -> None:
    d = market.daily
    sessions = d["session"].to_list()
    dropped = sessions[50]
    gappy = d.filter(pl.col("session") != dropped)
    lab = next_direction(gappy)
    before = previous_trading_day(dropped)
    assert before not in lab["session"].to_list()  # its next session is missing: no label
    assert dropped not in lab["label_session"].to_list()
    # every label is settled by the calendar's next session
    for s, ls in lab.select("session", "label_session").iter_rows():
        assert ls == next_trading_day(s)
    # and the values agree with a hand computation on the full series
    full = next_direction(d)
    closes = dict(zip(sessions, d["close"].to_list(), strict=True))
    for s, y in full.select("session", "label").head(20).iter_rows():
        assert y == int(closes[next_trading_day(s)] > closes[s])
    assert full.height == d.height - 1


def test_walk_forward_trains_on_sessions_before_each_block_only(
    market: Market, cfg: ForecastConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest training session of each block is the session before its first test session,
    and no test session of that block or a later one is in any training (or validation) slice:
    the logistic's inner selection fits, its refit, and the torch fits."""
    seen: list[tuple[str, np.ndarray]] = []
    real_fit, real_logistic = sel.fit, sel.fit_logistic

    def spy_fit(model: Any, train: Any, *a: Any, **k: Any) -> Any:
        seen.append(("fused", train.sessions.copy()))  # validation is the tail of this slice
        return real_fit(model, train, *a, **k)

    def spy_logistic(train: Any, *a: Any, **k: Any) -> Any:
        seen.append(("logistic", train.sessions.copy()))
        return real_logistic(train, *a, **k)

    monkeypatch.setattr(sel, "fit", spy_fit)
    monkeypatch.setattr(sel, "fit_logistic", spy_logistic)
    ev = cfg.evaluation.model_copy(update={"seeds": 1, "candidates": 1, "executor": "local"})
    cfg = cfg.model_copy(update={"evaluation": ev})
    w = build_windows(market.daily, market.intraday, cfg.features)
    every = 40
    res = wf.walk_forward(
        w,
        market.labels,
        cfg,
        start=date(2022, 3, 1),
        models=("logistic", "fused"),
        retrain_every=every,
        max_epochs=1,
    )
    tested = sorted(set(res.predictions["session"].to_list()))
    blocks = [tested[i : i + every] for i in range(0, len(tested), every)]
    # per block: the logistic's selection fits and refit, then the one torch fit
    per_block: list[list[tuple[str, np.ndarray]]] = [[]]
    for call in seen:
        per_block[-1].append(call)
        if call[0] == "fused":
            per_block.append([])
    per_block = [b for b in per_block if b]
    assert len(per_block) == len(blocks)
    for k, block in enumerate(blocks):
        later = np.array(tested[tested.index(block[0]) :], dtype="datetime64[D]")
        calls = per_block[k]
        assert [n for n, _ in calls].count("fused") == 1 and len(calls) > 2
        for name, train in calls:
            assert not np.isin(train, later).any(), (name, k)
        for name, train in (calls[-2], calls[-1]):  # the logistic refit and the torch fit
            assert train.max().astype(object) == previous_trading_day(block[0]), (name, k)
