"""Committed notebooks carry no outputs and start with a parameters cell."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.notebooks.conftest import NOTEBOOKS

PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_three_notebooks_exist() -> None:
    assert [p.name for p in PATHS] == [
        "01_market_data.ipynb",
        "02_forecaster_research.ipynb",
        "03_backtest_report.ipynb",
    ]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; clear them"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_first_code_cell_is_parameters(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", [])
    assert "QUANT_NOTEBOOK_STORE" in first.source and "QUANT_NOTEBOOK_SMALL" in first.source
