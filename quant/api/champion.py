"""Where the API finds its model: the registry's champion, read from a published snapshot.

The registry (``quant.registry``) keeps versions and the champion pointer in the store; the
pipeline publishes a snapshot after each change and the API reads the pointer from it.
``load_champion`` re-hashes the weights file before loading it (and falls back to the previous
verified champion if the newest one's file is damaged).
"""

from __future__ import annotations

import duckdb

from models.forecaster import Forecaster
from quant import registry
from quant.registry import ModelVersion


def champion(con: duckdb.DuckDBPyConnection | None) -> ModelVersion | None:
    """The champion's record (cheap: no weights are read)."""
    return None if con is None else registry.champion(con)


def versions(con: duckdb.DuckDBPyConnection | None) -> list[ModelVersion]:
    """Every registered version, oldest first."""
    return [] if con is None else registry.list_versions(con)


def load(
    con: duckdb.DuckDBPyConnection | None, models_dir: str
) -> tuple[ModelVersion, Forecaster] | None:
    """The champion (or the newest earlier champion that verifies) and its forecaster."""
    if champion(con) is None:
        return None
    assert con is not None
    return registry.load_champion(con, models_dir)
