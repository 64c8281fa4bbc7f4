"""Store summary: rows, date range and quarantined rows per (symbol, frequency, source)."""

from __future__ import annotations

from typing import Any

import duckdb

_SQL = """
WITH latest AS (  -- quarantine counts come from the newest ingest of each path
    SELECT file_sha256 FROM ingest_log
    QUALIFY row_number() OVER (PARTITION BY path ORDER BY finished_at DESC) = 1
), q AS (
    SELECT symbol, frequency, source, count(*) AS n FROM quarantine
    WHERE file_sha256 IN (SELECT file_sha256 FROM latest) GROUP BY ALL
), b AS (
    SELECT symbol, '1d' AS frequency, source, count(*) AS rows,
           CAST(min(session) AS VARCHAR) AS first, CAST(max(session) AS VARCHAR) AS last
    FROM bars_daily GROUP BY ALL
    UNION ALL
    SELECT symbol, frequency, source, count(*), strftime(min(ts), '%Y-%m-%dT%H:%M:%SZ'),
           strftime(max(ts), '%Y-%m-%dT%H:%M:%SZ') FROM bars_intraday GROUP BY ALL
)
SELECT b.symbol, b.frequency, b.source, b.rows, b.first, b.last, coalesce(q.n, 0)
FROM b LEFT JOIN q USING (symbol, frequency, source)
ORDER BY b.symbol, b.frequency, b.source
"""


def store_stats(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """One dict per (symbol, frequency, source): rows, first, last, quarantined.

    ``first``/``last`` are session dates for daily bars and UTC bar-end instants for intraday.
    """
    keys = ("symbol", "frequency", "source", "rows", "first", "last", "quarantined")
    return [dict(zip(keys, row, strict=True)) for row in con.execute(_SQL).fetchall()]
