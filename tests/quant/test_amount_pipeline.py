"""The pipeline's training path under the one amount policy (docs/forecaster.md)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from feeds.store import open_store
from feeds.synthetic import SYNTHETIC_SYMBOL
from models.features import FeatureError
from quant.config import QuantConfig
from quant.finetune import finetune, train_scratch
from quant.market_data import MarketData
from tests.quant.conftest import LAST


def test_first_fit_on_a_series_without_amount_drops_turnover(
    make_env: Callable[..., QuantConfig],
) -> None:
    cfg = make_env()
    con = open_store(cfg.store.path)
    try:
        with_amount = MarketData.load(con, cfg, LAST, symbol=SYNTHETIC_SYMBOL, intraday_symbol=None)
        con.execute("UPDATE bars_daily SET amount = NULL").fetchall()
        without = MarketData.load(con, cfg, LAST, symbol=SYNTHETIC_SYMBOL, intraday_symbol="IF.CFE")
    finally:
        con.close()
    assert with_amount.spec.use_amount is True and without.spec.use_amount is False
    idx = np.arange(len(without.windows))
    out = train_scratch(without, idx, cfg.forecast, "fused")
    assert out.forecaster.spec.use_amount is False  # what the checkpoint will record
    champion = train_scratch(with_amount, idx, cfg.forecast, "fused").forecaster
    with pytest.raises(FeatureError, match="trained with the turnover feature"):
        finetune(champion, without, idx, cfg.forecast, cfg.pipeline.finetune, budget_s=5.0)
