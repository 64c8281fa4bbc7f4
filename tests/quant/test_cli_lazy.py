"""The lazy command table stays in step with the commands it loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from quant.cli import COMMANDS, load_command


@pytest.mark.parametrize("name", list(COMMANDS))
def test_listed_help_matches_the_command(name: str) -> None:
    cmd = load_command(name)
    assert cmd is not None, f"{name} is listed but its module does not register it"
    assert cmd.get_short_help_str(limit=80) == COMMANDS[name][1]


def test_help_does_not_import_torch_or_vectorbt() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from quant.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('torch', 'vectorbt') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_command_is_rejected() -> None:
    assert load_command("nope") is None


def test_every_registered_command_is_listed() -> None:
    import importlib

    import click

    for module in {m for m, _ in COMMANDS.values()}:
        group = click.Group()
        importlib.import_module(f"quant.cli.{module}").register(group)
        missing = set(group.commands) - set(COMMANDS)
        assert not missing, f"quant.cli.{module} registers {missing}: add them to COMMANDS"
