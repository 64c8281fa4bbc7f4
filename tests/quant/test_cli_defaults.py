"""CLI options never shadow the configuration: left out, they take the config's value."""

from __future__ import annotations

import re

import click
import pytest

from quant.cli import COMMANDS, cli, load_command
from quant.cli._context import config_default
from quant.config import QuantConfig

_KEY = re.compile(r"default: config ([a-z_.]+)")
_UNSET = getattr(click.core, "UNSET", None)  # click >= 8.3: an option given no default


def _options() -> list[tuple[str, click.Option]]:
    out = [("quant", p) for p in cli.params if isinstance(p, click.Option)]
    for name in COMMANDS:
        cmd = load_command(name)
        assert cmd is not None
        cmds = cmd.commands.values() if isinstance(cmd, click.Group) else [cmd]
        for c in cmds:
            out += [(f"{name} {c.name}", p) for p in c.params if isinstance(p, click.Option)]
    return out


def _resolve(key: str) -> object:
    node: object = QuantConfig()
    for part in key.split("."):
        assert hasattr(node, part), f"help names config key {key!r}, which does not exist"
        node = getattr(node, part)
    return node


def test_every_config_backed_option_defaults_to_none_and_names_a_real_key() -> None:
    backed = [(c, o) for c, o in _options() if o.help and _KEY.search(o.help)]
    assert len(backed) >= 30
    for where, opt in backed:
        _resolve(_KEY.search(opt.help or "").group(1))  # type: ignore[union-attr]
        assert opt.default in (None, _UNSET), (
            f"{where} {opt.name}: default {opt.default!r} shadows config"
        )


@pytest.mark.parametrize(
    ("command", "option", "key"),
    [
        ("main", "budget", "pipeline.finetune.budget_s"),
        ("evaluate", "intraday_symbol", "data.intraday_symbol"),
        ("evaluate", "intraday_frequency", "forecast.features.intraday_minutes"),
        ("serve", "port", "api.port"),
    ],
)
def test_options_that_used_to_shadow_the_config(command: str, option: str, key: str) -> None:
    cmd = load_command(command)
    assert cmd is not None
    opt = next(p for p in cmd.params if p.name == option)
    assert opt.default in (None, _UNSET)
    assert f"default: config {key}, built-in {_resolve(key)}" in (opt.help or "")


def test_config_default_rejects_an_unknown_key() -> None:
    with pytest.raises(KeyError, match=r"data\.nope"):
        config_default("data.nope")
    assert config_default("data.symbol", "Index") == (
        "Index (default: config data.symbol, built-in 000300.SH)."
    )
