"""The one schema registry: every table defined once, created by one idempotent function."""

from __future__ import annotations

import sqlite3

import duckdb
import pytest

import backtest.schema
import quant.schema
from feeds import schema
from feeds.store import open_store


def test_every_package_registers_its_tables_once() -> None:
    tables = schema.registered_tables()
    assert set(schema.STORE_TABLES) <= set(tables.values())
    assert set(backtest.schema.BACKTEST_TABLES) <= set(tables.values())
    assert {t.name for t in quant.schema.KEY_TABLES} == {"api_keys", "api_audit"}
    assert {t.database for t in tables.values()} == {"store", "keys", "jobs"}
    assert len(tables) == 23  # 20 in the store (bar_series + bar_batches + intraday_values
    # under the bars_intraday view), 2 in the keys file, 1 in the jobs file


def test_create_tables_is_idempotent_and_never_alters() -> None:
    con = duckdb.connect(":memory:")
    sq = sqlite3.connect(":memory:")
    for _ in range(2):
        for t in schema.registered_tables().values():
            schema.create_tables(con if t.database == "store" else sq, [t])
    got = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    want = {n for n, t in schema.registered_tables().items() if t.database == "store"}
    assert got == want
    # an older store's table with an extra column keeps it (CREATE TABLE IF NOT EXISTS)
    con2 = duckdb.connect(":memory:")
    con2.execute("CREATE TABLE signals (symbol VARCHAR, legacy INTEGER)")
    schema.create_tables(con2, [quant.schema.SIGNALS])
    cols = [r[0] for r in con2.execute("DESCRIBE signals").fetchall()]
    assert cols == ["symbol", "legacy"]


def test_a_second_definition_of_a_table_fails() -> None:
    other = schema.Table("signals", "CREATE TABLE IF NOT EXISTS signals (x INTEGER)")
    with pytest.raises(ValueError, match="signals is defined twice"):
        schema.register_tables(other)
    with pytest.raises(ValueError, match="must start with"):
        schema.Table("t", "CREATE TABLE t (x INTEGER)")


def test_open_store_creates_the_store_tables(tmp_path) -> None:
    con = open_store(tmp_path / "s.duckdb")
    rows = con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall()
    tables = {name for name, kind in rows if kind == "BASE TABLE"}
    assert tables == {t.name for t in schema.STORE_TABLES}
    assert ("bars_intraday", "VIEW") in rows  # what every reader queries
