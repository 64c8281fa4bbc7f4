"""Canonical bar schema of the market store and its DuckDB tables.

Conventions (they bite, so they are stated once here):
- ``ts`` is the bar END instant, stored as UTC ``TIMESTAMPTZ``; exchange time is Asia/Shanghai.
  Daily bars are stamped with the session close (15:00 exchange time; 15:15 for index futures
  before 2016).
- ``volume`` is in shares for index, stock and ETF bars and in contracts for index futures.
- ``amount`` is turnover in CNY.
- ``ingested_at`` is when the store learned of the row (UTC), for point-in-time audits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

import polars as pl


class InstrumentKind(StrEnum):
    INDEX = "index"
    INDEX_FUTURE = "index_future"
    ETF = "etf"
    STOCK = "stock"


class Frequency(StrEnum):
    DAILY = "1d"
    MINUTE = "1m"
    FIVE_MINUTE = "5m"

    @property
    def minutes(self) -> int:
        return {"1d": 0, "1m": 1, "5m": 5}[self.value]

    @property
    def intraday(self) -> bool:
        return self is not Frequency.DAILY


# Rows per DuckDB row group in the store (``feeds.store`` attaches it so; DuckDB's default is
# 122,880).  A bulk batch of a few hundred thousand rows then spans enough row groups for the
# insert to compress them on both cores, and the partial row group it leaves is small.
ROW_GROUP_SIZE = 65_536

PRICE_FIELDS = ("open", "high", "low", "close")
VALUE_FIELDS = (*PRICE_FIELDS, "volume", "amount", "open_interest")

# Canonical in-memory frame of validated bars (one row per bar) handed to the store writer.
BAR_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "kind": pl.String(),
    "frequency": pl.String(),
    "source": pl.String(),
    "session": pl.Date(),
    "ts": pl.Datetime("us", "UTC"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "amount": pl.Float64(),
    "open_interest": pl.Float64(),
}

BAR_COLUMNS = tuple(BAR_SCHEMA)


class _Executes(Protocol):
    """A DuckDB or sqlite3 connection (both run one statement with ``execute``)."""

    def execute(self, sql: str, /) -> Any: ...


@dataclass(frozen=True)
class Table:
    """One table: its name, its ``CREATE TABLE IF NOT EXISTS`` statement, and the database file
    it lives in (``store``: the DuckDB market store; ``keys`` and ``jobs``: the SQLite files
    beside it)."""

    name: str
    ddl: str
    database: Literal["store", "keys", "jobs"] = "store"

    def __post_init__(self) -> None:
        if not self.ddl.lstrip().startswith(f"CREATE TABLE IF NOT EXISTS {self.name} ("):
            want = f"CREATE TABLE IF NOT EXISTS {self.name} ("
            raise ValueError(f"table {self.name}: its DDL must start with {want!r}")


_REGISTRY: dict[str, Table] = {}


def register_tables(*tables: Table) -> tuple[Table, ...]:
    """Add ``tables`` to the one schema registry; a second, different definition of a name fails."""
    for t in tables:
        known = _REGISTRY.get(t.name)
        if known is not None and known != t:
            raise ValueError(f"table {t.name} is defined twice")
        _REGISTRY[t.name] = t
    return tables


def registered_tables() -> dict[str, Table]:
    """Every table registered so far, by name (the packages register theirs on import:
    ``feeds.schema``, ``backtest.schema``, ``quant.schema``)."""
    return dict(_REGISTRY)


def create_tables(con: _Executes, tables: Iterable[Table]) -> None:
    """Create each of ``tables`` that does not exist yet; an existing table is never altered, so
    stores written by older versions keep opening.  The one function that runs table DDL."""
    for t in tables:
        con.execute(t.ddl).fetchall()


BARS_DAILY = Table(
    "bars_daily",
    """
CREATE TABLE IF NOT EXISTS bars_daily (
    symbol        VARCHAR     NOT NULL,
    kind          VARCHAR     NOT NULL,
    source        VARCHAR     NOT NULL,
    session       DATE        NOT NULL,   -- exchange trading date
    ts            TIMESTAMPTZ NOT NULL,   -- session close instant (bar end), UTC
    open          DOUBLE      NOT NULL,
    high          DOUBLE      NOT NULL,
    low           DOUBLE      NOT NULL,
    close         DOUBLE      NOT NULL,
    volume        DOUBLE,                 -- shares (index/stock/ETF) or contracts (futures)
    amount        DOUBLE,                 -- CNY
    open_interest DOUBLE,                 -- contracts, futures only
    file_sha256   VARCHAR,
    ingested_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, source, session)
);
""",
)

BAR_SERIES = Table(
    "bar_series",
    """
CREATE TABLE IF NOT EXISTS bar_series (
    series_id     INTEGER     PRIMARY KEY, -- the integer key the intraday rows carry
    symbol        VARCHAR     NOT NULL,
    kind          VARCHAR     NOT NULL,
    frequency     VARCHAR     NOT NULL,   -- '1m' or '5m'
    source        VARCHAR     NOT NULL,
    UNIQUE (symbol, kind, frequency, source)
);
""",
)

BAR_BATCHES = Table(
    "bar_batches",
    """
CREATE TABLE IF NOT EXISTS bar_batches (
    batch_id      INTEGER     PRIMARY KEY, -- the integer key the intraday rows carry
    file_sha256   VARCHAR,                 -- the file (or frame key) the rows came from
    ingested_at   TIMESTAMPTZ NOT NULL     -- when the store learned of them (UTC)
);
""",
)

INTRADAY_VALUES = Table(
    "intraday_values",
    """
CREATE TABLE IF NOT EXISTS intraday_values (
    series_id     INTEGER     NOT NULL USING COMPRESSION rle,         -- bar_series
    session       DATE        NOT NULL USING COMPRESSION rle,
    ts            TIMESTAMPTZ NOT NULL USING COMPRESSION bitpacking,  -- bar END instant, UTC
    open          DOUBLE      NOT NULL USING COMPRESSION alp,
    high          DOUBLE      NOT NULL USING COMPRESSION alp,
    low           DOUBLE      NOT NULL USING COMPRESSION alp,
    close         DOUBLE      NOT NULL USING COMPRESSION alp,
    volume        DOUBLE               USING COMPRESSION alp,
    amount        DOUBLE               USING COMPRESSION alp,
    open_interest DOUBLE               USING COMPRESSION alp,
    batch_id      INTEGER     NOT NULL USING COMPRESSION rle  -- bar_batches: file, time
    -- key (symbol, frequency, source, ts): unique by construction, not by an index.  The one
    -- writer (feeds.writer) anti-joins each batch against the stored keys inside the batch's
    -- transaction; an ART primary-key index made bulk loads several times slower, and VARCHAR
    -- columns on every row (the series' four names, the file's hash) cost more to store than
    -- all the numbers together (hence bar_series and bar_batches).
    --
    -- Each column's codec is the one DuckDB's analysis picks for vendor bars (pinned, so the
    -- insert does not try every other codec on every segment; the ingest benchmark measures
    -- both tables in one run: faster in 6 of 9 runs on 2026-12-03, medians 2.31 vs 2.28 M
    -- rows/s, so a small gain beside the machine's noise): series, session and
    -- batch in runs (the writer lands a batch's rows grouped by series, ``feeds.writer``),
    -- bar ends bit-packed, and ALP for the values, which vendors quote in decimals (the tick,
    -- the share, the yuan).  Doubles with no short decimal form (the synthetic generator's)
    -- take a little more room under ALP than under ALP-RD (484 vs 468 MiB for 10 M bars).
);
""",
)

INGEST_LOG = Table(
    "ingest_log",
    """
CREATE TABLE IF NOT EXISTS ingest_log (
    ingest_key       VARCHAR PRIMARY KEY, -- sha256 of content hash + profile + symbol override
    file_sha256      VARCHAR NOT NULL,    -- sha256 of the file's bytes
    path             VARCHAR NOT NULL,
    profile          VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,
    rows_read        BIGINT  NOT NULL,
    rows_loaded      BIGINT  NOT NULL,
    rows_inserted    BIGINT  NOT NULL,
    rows_updated     BIGINT  NOT NULL,
    rows_quarantined BIGINT  NOT NULL,
    rows_dropped     BIGINT  NOT NULL,   -- documented drops, e.g. repeated header lines
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ NOT NULL
);
""",
)

QUARANTINE = Table(
    "quarantine",
    """
CREATE TABLE IF NOT EXISTS quarantine (
    file_sha256 VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    line        BIGINT,                  -- 1-based line in the file (header is line 1)
    symbol      VARCHAR,
    frequency   VARCHAR,
    source      VARCHAR,
    field       VARCHAR,
    reason      VARCHAR NOT NULL,
    raw         VARCHAR,
    quarantined_at TIMESTAMPTZ NOT NULL
);
""",
)

BAR_REVISIONS = Table(
    "bar_revisions",
    """
CREATE TABLE IF NOT EXISTS bar_revisions (
    symbol      VARCHAR NOT NULL,
    frequency   VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    field       VARCHAR NOT NULL,
    old_value   DOUBLE,
    new_value   DOUBLE,
    file_sha256 VARCHAR NOT NULL,
    revised_at  TIMESTAMPTZ NOT NULL
);
""",
)

SESSION_GAPS = Table(
    "session_gaps",
    """
CREATE TABLE IF NOT EXISTS session_gaps (
    symbol      VARCHAR NOT NULL,
    frequency   VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    session     DATE    NOT NULL,
    expected    INTEGER NOT NULL,
    present     INTEGER NOT NULL,
    missing     INTEGER NOT NULL,
    first_missing TIMESTAMPTZ,
    PRIMARY KEY (symbol, frequency, source, session)
);
""",
)

FEED_CONTRACTS = Table(
    "feed_contracts",
    """
CREATE TABLE IF NOT EXISTS feed_contracts (
    symbol      VARCHAR NOT NULL,   -- continuous series, e.g. IF.CFE
    frequency   VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    session     DATE NOT NULL,
    contract    VARCHAR NOT NULL,   -- the contract every bar of the session came from
    rule        VARCHAR NOT NULL,   -- how it was chosen
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, frequency, source, session)
);
""",
)

# Created whenever the store is opened for writing (``feeds.store.open_store``).
STORE_TABLES = register_tables(
    BARS_DAILY,
    BAR_SERIES,
    BAR_BATCHES,
    INTRADAY_VALUES,
    INGEST_LOG,
    QUARANTINE,
    BAR_REVISIONS,
    SESSION_GAPS,
)
# Created on first use by a futures adapter (``feeds.adapters``).
register_tables(FEED_CONTRACTS)

# ``bars_intraday`` is what every reader queries: the intraday rows with their series and batch
# spelled out, in the column order of the table it replaced.  Stores created before the series
# key hold a table of that name, and stores created before the batch key hold ``file_sha256``
# and ``ingested_at`` on every ``intraday_values`` row; ``feeds.store.open_store`` migrates
# both when opened for writing.
INTRADAY_VIEW = """
CREATE OR REPLACE VIEW bars_intraday AS
SELECT s.symbol, s.kind, s.frequency, s.source, b.session, b.ts, b.open, b.high, b.low, b.close,
       b.volume, b.amount, b.open_interest, w.file_sha256, w.ingested_at
FROM intraday_values b JOIN bar_series s USING (series_id) JOIN bar_batches w USING (batch_id)
"""
