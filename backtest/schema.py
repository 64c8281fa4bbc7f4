"""Tables of the ``backtest`` package in the market store, registered in ``feeds.schema``.

- ``backtest_runs``: one row per run: config hash and JSON, data range, model and its version.
- ``backtest_metrics``: long format (run_id, scope, metric, value).
- ``backtest_sweep``: one row per sweep variant, the configured one marked ``chosen``.

Created on demand by ``backtest.runs.record_run`` (``feeds.schema.create_tables``).
"""

from __future__ import annotations

from feeds.schema import Table, register_tables

BACKTEST_RUNS = Table(
    "backtest_runs",
    """
CREATE TABLE IF NOT EXISTS backtest_runs (
    run_id        VARCHAR PRIMARY KEY,
    created_at    TIMESTAMPTZ NOT NULL,   -- UTC
    model         VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    symbol        VARCHAR NOT NULL,
    source        VARCHAR,                -- bar source the run read (wind, eastmoney, ...)
    instrument    VARCHAR NOT NULL,       -- cost profile: if, etf, stock
    config_hash   VARCHAR NOT NULL,       -- sha256 of the effective backtest config
    config_json   VARCHAR NOT NULL,
    first_session DATE NOT NULL,
    last_session  DATE NOT NULL,
    n_sessions    INTEGER NOT NULL,       -- sessions scored for accuracy
    out_dir       VARCHAR
);
""",
)

BACKTEST_METRICS = Table(
    "backtest_metrics",
    """
CREATE TABLE IF NOT EXISTS backtest_metrics (
    run_id VARCHAR NOT NULL,
    scope  VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value  DOUBLE,
    PRIMARY KEY (run_id, scope, metric)
);
""",
)

BACKTEST_SWEEP = Table(
    "backtest_sweep",
    """
CREATE TABLE IF NOT EXISTS backtest_sweep (
    run_id          VARCHAR NOT NULL,
    variant         INTEGER NOT NULL,
    threshold       DOUBLE NOT NULL,
    cost_multiplier DOUBLE NOT NULL,
    lag             INTEGER NOT NULL,
    total_return    DOUBLE,
    annual_return   DOUBLE,
    sharpe          DOUBLE,
    max_drawdown    DOUBLE,
    orders          BIGINT,
    chosen          BOOLEAN NOT NULL,
    PRIMARY KEY (run_id, variant)
);
""",
)

BACKTEST_TABLES = register_tables(BACKTEST_RUNS, BACKTEST_METRICS, BACKTEST_SWEEP)
