"""The frozen configuration tree: defaults <- TOML file <- environment <- explicit overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from feeds.read import DEFAULT_SOURCE_PRIORITY
from quant.config import ConfigError, QuantConfig, load_config


@pytest.fixture
def toml(tmp_path: Path):
    def _write(text: str) -> Path:
        p = tmp_path / "quant.toml"
        p.write_text(text, encoding="utf-8")
        return p

    return _write


def test_defaults() -> None:
    cfg = load_config(env={})
    assert isinstance(cfg, QuantConfig)
    assert cfg.store.path == Path("var/quant.duckdb")
    assert cfg.store.source_priority == DEFAULT_SOURCE_PRIORITY
    assert cfg.data.symbol == "000300.SH"
    assert cfg.data.intraday_symbol == "IF.CFE"
    assert cfg.forecast.features.intraday_minutes == 5
    assert cfg.data.real_data_dir == Path("../shared/data/real")


def test_toml_file_overrides_defaults(toml) -> None:
    p = toml('[store]\npath = "/data/q.duckdb"\n\n[forecast.features]\nintraday_minutes = 1\n')
    cfg = load_config(p, env={})
    assert cfg.store.path == Path("/data/q.duckdb")
    assert cfg.forecast.features.intraday_minutes == 1
    assert cfg.data.symbol == "000300.SH"  # untouched keys keep their defaults


def test_quant_config_env_names_the_file(toml) -> None:
    p = toml('[store]\npath = "from-file.duckdb"\n')
    assert load_config(env={"QUANT_CONFIG": str(p)}).store.path == Path("from-file.duckdb")


def test_env_overrides_file(toml) -> None:
    p = toml('[store]\npath = "from-file.duckdb"\n')
    cfg = load_config(p, env={"QUANT__STORE__PATH": "/env/q.duckdb"})
    assert cfg.store.path == Path("/env/q.duckdb")


def test_env_values_are_parsed_as_json_when_they_can_be() -> None:
    cfg = load_config(
        env={
            "QUANT__DATA__SYNTHETIC_SEED": "42",
            "QUANT__STORE__SOURCE_PRIORITY": '["eastmoney", "wind"]',
        }
    )
    assert cfg.data.synthetic_seed == 42
    assert cfg.store.source_priority == ("eastmoney", "wind")


def test_quant_db_is_a_shortcut_for_the_store_path() -> None:
    assert load_config(env={"QUANT_DB": "/tmp/x.duckdb"}).store.path == Path("/tmp/x.duckdb")


def test_explicit_overrides_win() -> None:
    cfg = load_config(env={"QUANT_DB": "/env.duckdb"}, overrides={"store": {"path": "/cli.duckdb"}})
    assert cfg.store.path == Path("/cli.duckdb")


def test_unknown_key_in_file_is_rejected(toml) -> None:
    p = toml('[store]\npath = "q.duckdb"\npaht = "typo.duckdb"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    assert "store.paht" in str(exc.value)
    assert str(p) in str(exc.value)


def test_unknown_section_in_file_is_rejected(toml) -> None:
    with pytest.raises(ConfigError, match="storage"):
        load_config(toml('[storage]\npath = "q.duckdb"\n'), env={})


def test_unknown_env_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"store\.bogus"):
        load_config(env={"QUANT__STORE__BOGUS": "1"})
    with pytest.raises(ConfigError, match="nope"):
        load_config(env={"QUANT__NOPE__X": "1"})


def test_malformed_env_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match="QUANT__STORE"):
        load_config(env={"QUANT__STORE": "x"})


def test_invalid_value_is_rejected() -> None:
    with pytest.raises(ConfigError, match="intraday_minutes"):
        load_config(env={"QUANT__FORECAST__FEATURES__INTRADAY_MINUTES": "15"})


def test_removed_key_is_named(toml) -> None:
    """data.intraday_frequency was a second copy of forecast.features.intraday_minutes."""
    p = toml('[data]\nintraday_frequency = "5m"\n')
    with pytest.raises(ConfigError, match=r"data\.intraday_frequency\s+Extra inputs"):
        load_config(p, env={})


def test_unreadable_or_broken_file_is_rejected(toml, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_config(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match=r"quant\.toml"):
        load_config(toml("[store\n"), env={})


def test_config_is_frozen() -> None:
    cfg = load_config(env={})
    with pytest.raises(ValidationError, match="frozen"):
        cfg.store.path = Path("elsewhere.duckdb")  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        cfg.data = cfg.data  # type: ignore[misc]
    assert cfg.store.path == Path("var/quant.duckdb")
