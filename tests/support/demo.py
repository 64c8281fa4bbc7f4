"""A seeded demo deployment of the API on the SYNTHETIC market (tests and the load benchmark).

``build_demo`` writes a store of synthetic bars, trains a small forecaster for a few epochs,
registers it as champion, publishes signals for the last sessions and a snapshot.  The numbers
it produces are not forecasts of anything real; they exist to exercise the service.  Support
code of the tests and benchmarks (``from tests.support.demo import ...``), not shipped: it
reads bars with ``quant.market_data.MarketData`` and publishes with
``quant.signals.publish_next_signal``, as the service does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import torch

from feeds.snapshot import publish_snapshot
from feeds.store import open_store, transaction
from feeds.synthetic import synthetic_market
from feeds.writer import write_bars
from models.config import ForecastConfig, TrainSettings
from models.factory import build, model_config
from models.forecaster import Forecaster
from models.normalise import apply_norm, fit_norm
from models.train import fit
from quant import registry
from quant.config import QuantConfig
from quant.market_data import MarketData
from quant.signals import publish_next_signal

SYMBOL = "000300.SH"


@dataclass(frozen=True)
class Demo:
    store: Path
    models_dir: Path
    daily: pl.DataFrame  # 000300.SH daily bars as stored (UTC-aware ts)
    minute: pl.DataFrame  # 1-minute bars of the trailing sessions
    champion: str  # version id


def train_forecaster(
    daily: pl.DataFrame, intraday: pl.DataFrame | None, cfg: ForecastConfig, *, seed: int = 0
) -> Forecaster:
    """A few epochs of the fused model: enough to serve, not to trade."""
    data = MarketData.of_bars(daily, intraday, cfg.features)
    spec, w, y = data.spec, data.windows, data.labels
    norm = fit_norm(w)
    torch.manual_seed(seed)
    model = build(model_config("fused", spec, cfg.model))
    settings = TrainSettings(max_epochs=2, seed=seed)
    fit(model, apply_norm(w, norm), y, settings)
    return Forecaster(model.eval(), spec, norm, "fused", {"intraday_symbol": SYMBOL})


def register_champion(
    store: Path, models_dir: Path, fc: Forecaster, *, reason: str = "demo", publish: bool = True
) -> str:
    """Register ``fc`` as the new champion in the store and publish a snapshot."""
    con = open_store(store)
    try:
        champ = registry.champion(con)
        v = registry.register(
            con,
            fc,
            models_dir,
            parent_id=champ.version_id if champ else None,
            kind="initial" if champ is None else "retrain",
            cfg_hash=registry.config_hash({"spec": fc.spec.model_dump()}),
            train_start=date(2023, 1, 3),
            train_end=date(2024, 6, 28),
            metrics={"note": "synthetic demo"},
        )
        with transaction(con):
            registry.set_champion(con, v.version_id, action="promote", reason=reason)
        if publish:
            publish_snapshot(con, store)
    finally:
        con.close()
    return v.version_id


def build_demo(
    directory: Path,
    *,
    cfg: ForecastConfig | None = None,
    seed: int = 5,
    start: date = date(2022, 6, 1),
    end: date = date(2024, 6, 28),
) -> Demo:
    """Store, champion, three published signals (one re-run: two versions) and a snapshot."""
    cfg = cfg or ForecastConfig()
    directory.mkdir(parents=True, exist_ok=True)
    store, models_dir = directory / "quant.duckdb", directory / "models"
    # A self-contained fixture store of the API (tests, benchmarks): synthetic bars only, so no
    # symbol mixes synthetic and real sources; never the service's store.
    m = synthetic_market(start, end, seed=seed, symbol=SYMBOL, minute_sessions=60)
    con = open_store(store)
    with transaction(con):
        write_bars(con, pl.concat([m.daily, m.minute]), file_sha256=None)
    qcfg = QuantConfig(forecast=cfg)  # the store holds the synthetic source only
    data = MarketData.load(con, qcfg, None, symbol=SYMBOL, intraday_symbol=SYMBOL)
    con.close()
    fc = train_forecaster(data.daily, data.intraday, cfg, seed=seed)
    version = register_champion(store, models_dir, fc, publish=False)
    con = open_store(store)
    try:
        sessions = data.daily.get_column("session").to_list()
        for t in [*sessions[-4:-1], sessions[-2]]:  # the last one a re-run: two versions
            publish_next_signal(con, data, fc, version, session=t)
        publish_snapshot(con, store)
    finally:
        con.close()
    minute = m.minute.filter(pl.col("symbol") == SYMBOL)
    return Demo(store, models_dir, data.daily, minute, version)


def request_body(
    daily: pl.DataFrame, minute: pl.DataFrame | None, end: date, n_daily: int = 45
) -> dict[str, Any]:
    """A POST /v1/forecast body: ``n_daily`` daily bars ending ``end`` (+ that day's minutes)."""
    d = daily.filter(pl.col("session") <= end).tail(n_daily)
    body: dict[str, Any] = {
        "symbol": SYMBOL,
        "daily": [
            {
                "date": r["session"].isoformat(),
                **{k: r[k] for k in ("open", "high", "low", "close", "volume", "amount")},
            }
            for r in d.iter_rows(named=True)
        ],
    }
    if minute is not None:
        mm = minute.filter(pl.col("session") == end)
        body["intraday_symbol"] = SYMBOL  # the demo model's minute branch reads index bars
        body["intraday"] = [
            {
                "ts": r["ts"].isoformat(),
                **{k: r[k] for k in ("open", "high", "low", "close", "volume")},
            }
            for r in mm.iter_rows(named=True)
        ]
    return body
