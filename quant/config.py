"""One frozen, typed configuration tree for the whole service.

Loaded once (``load_config``) from defaults, then an optional TOML file, then environment
variables, and passed explicitly to whatever needs it.  Unknown keys are rejected everywhere.

Environment overrides use ``QUANT__<SECTION>__<FIELD>`` (for example
``QUANT__STORE__PATH=/data/q.duckdb``); ``QUANT_DB`` is a shortcut for the store path and
``QUANT_CONFIG`` names the TOML file.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from backtest.config import BacktestConfig
from feeds.frozen import Frozen
from feeds.read import DEFAULT_SOURCE_PRIORITY
from feeds.store import Store
from models.config import ForecastConfig
from quant.api.settings import ApiConfig
from quant.settings_feeds import CalendarSettings, Feed, LiveSettings
from quant.settings_pipeline import PipelineConfig


class StoreConfig(Frozen):
    """Where the embedded DuckDB market store lives and how reads pick a source."""

    path: Path = Field(Path("var/quant.duckdb"), description="DuckDB file (one writer at a time)")
    source_priority: tuple[str, ...] = Field(
        DEFAULT_SOURCE_PRIORITY, description="preferred source first when several hold a symbol"
    )
    lake: str | None = Field(
        None,
        description="Parquet lake (folder or s3:// URL, from `quant db export --parquet`) that "
        "read-only commands read bars from instead of the store file; writes still go to path",
    )

    def handle(self) -> Store:
        """The ``feeds.store.Store`` of this section: reads follow ``source_priority``, writes
        hold the writer lock."""
        return Store(Path(self.path), tuple(self.source_priority), self.lake)


class DataConfig(Frozen):
    """What the service forecasts and where the real vendor files are."""

    symbol: str = Field("000300.SH", description="the index whose next-session direction we call")
    intraday_symbol: str = Field("IF.CFE", description="intraday bars for the short-term branch")
    real_data_dir: Path = Field(
        Path("../shared/data/real"), description="real vendor files, read in place, never copied"
    )
    synthetic_symbol: str = Field(
        "SYN300.SIM",
        description="symbol of the SYNTHETIC market (no exchange lists it; never a real symbol)",
    )
    synthetic_seed: int = Field(7, description="seed of the synthetic market (demo and tests)")
    synthetic_start: date = Field(date(2015, 1, 5), description="first day of the synthetic market")
    synthetic_end: date = Field(date(2025, 5, 16), description="last day of the synthetic market")
    synthetic_minute_sessions: int = Field(
        500, ge=0, description="trailing synthetic sessions that also get 1-minute bars"
    )


class QuantConfig(Frozen):
    """Root of the configuration tree."""

    store: StoreConfig = StoreConfig()
    data: DataConfig = DataConfig()
    forecast: ForecastConfig = ForecastConfig()
    backtest: BacktestConfig = BacktestConfig()
    pipeline: PipelineConfig = PipelineConfig()
    api: ApiConfig = ApiConfig()
    feeds: tuple[Feed, ...] = ()
    live: LiveSettings = LiveSettings()
    calendar: CalendarSettings = CalendarSettings()


def models_dir(cfg: QuantConfig) -> Path:
    """Weights directory: ``pipeline.models_dir``, else ``models/`` beside the store (the one
    place this is derived: pipeline, `quant predict`, `quant models` and the API)."""
    return cfg.pipeline.models_dir or Path(cfg.store.path).parent / "models"


def apply_calendar(cfg: QuantConfig) -> None:
    """Install ``cfg.calendar`` (extra holidays, horizon) as this process's XSHG calendar."""
    from feeds.calendar import configure

    configure(extra_holidays=cfg.calendar.extra_holidays, horizon=cfg.calendar.horizon)


class ConfigError(ValueError):
    """The configuration file or an override is invalid (the message names the key)."""


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith("QUANT__"):
            continue
        parts = [p.lower() for p in key[len("QUANT__") :].split("__")]
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"environment override {key}: expected QUANT__<SECTION>__<FIELD>")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    if "QUANT_DB" in env:
        out.setdefault("store", {})["path"] = env["QUANT_DB"]
    return out


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> QuantConfig:
    """Defaults <- TOML file (``path`` or ``$QUANT_CONFIG``) <- environment <- ``overrides``."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    file = path or env.get("QUANT_CONFIG")
    if file:
        try:
            data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {file}: {exc}") from exc
    data = _deep_merge(data, _env_overrides(env))
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return QuantConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration{f' in {file}' if file else ''}:\n{exc}") from exc
