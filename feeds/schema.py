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

from enum import StrEnum

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

DDL = """
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
CREATE TABLE IF NOT EXISTS bar_series (
    series_id     INTEGER     PRIMARY KEY, -- the integer key the intraday rows carry
    symbol        VARCHAR     NOT NULL,
    kind          VARCHAR     NOT NULL,
    frequency     VARCHAR     NOT NULL,   -- '1m' or '5m'
    source        VARCHAR     NOT NULL,
    UNIQUE (symbol, kind, frequency, source)
);
CREATE TABLE IF NOT EXISTS intraday_values (
    series_id     INTEGER     NOT NULL,   -- bar_series
    session       DATE        NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,   -- bar END instant, UTC
    open          DOUBLE      NOT NULL,
    high          DOUBLE      NOT NULL,
    low           DOUBLE      NOT NULL,
    close         DOUBLE      NOT NULL,
    volume        DOUBLE,
    amount        DOUBLE,
    open_interest DOUBLE,
    file_sha256   VARCHAR,
    ingested_at   TIMESTAMPTZ NOT NULL
    -- key (symbol, frequency, source, ts): unique by construction, not by an index.  The one
    -- writer (feeds.writer) anti-joins each batch against the stored keys inside the batch's
    -- transaction; an ART primary-key index made bulk loads several times slower, and four
    -- VARCHAR columns per row cost more to store than everything else (hence bar_series).
);
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
"""

# ``bars_intraday`` is what every reader queries: the intraday rows with their series spelled
# out, in the column order of the table it replaced.  Stores created before the series key hold
# a table of that name; ``feeds.store.open_store`` migrates them when opened for writing.
INTRADAY_VIEW = """
CREATE VIEW bars_intraday AS
SELECT s.symbol, s.kind, s.frequency, s.source, b.session, b.ts, b.open, b.high, b.low, b.close,
       b.volume, b.amount, b.open_interest, b.file_sha256, b.ingested_at
FROM intraday_values b JOIN bar_series s USING (series_id)
"""
