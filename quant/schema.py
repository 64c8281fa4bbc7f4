"""Tables of the ``quant`` package, registered in the one schema registry (``feeds.schema``).

Every table is created with ``feeds.schema.create_tables`` (``CREATE TABLE IF NOT EXISTS``: an
existing table is never altered) by the module that first writes or reads it.  Most live in the
DuckDB market store; the API keys and the scheduler's jobs live in SQLite files beside it, so
``quant keys`` and the job store work while the one DuckDB writer runs.
"""

from __future__ import annotations

from feeds.schema import Table, register_tables

# -- the market store (DuckDB) ------------------------------------------------------------------

SIGNALS = Table(
    "signals",
    """
CREATE TABLE IF NOT EXISTS signals (
    symbol           VARCHAR     NOT NULL,
    session          DATE        NOT NULL,  -- the session the forecast is for
    version          INTEGER     NOT NULL,  -- 1, 2, ... per (symbol, session); never overwritten
    decision_session DATE        NOT NULL,  -- the session whose close the forecast was made at
    p_up             DOUBLE      NOT NULL,
    direction        VARCHAR     NOT NULL,  -- 'up' | 'down'
    confidence       DOUBLE      NOT NULL,  -- |p_up - 0.5| * 2, in [0, 1]
    model_version    VARCHAR     NOT NULL,
    last_bar_ts      TIMESTAMPTZ NOT NULL,  -- end of the last bar the model saw (UTC)
    generated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, session, version)
);
""",
)

GATE_DECISIONS = Table(
    "gate_decisions",
    """
CREATE TABLE IF NOT EXISTS gate_decisions (
    run_date      DATE NOT NULL,
    symbol        VARCHAR NOT NULL,
    challenger_id VARCHAR NOT NULL,
    champion_id   VARCHAR,
    promoted      BOOLEAN NOT NULL,
    reason        VARCHAR NOT NULL,
    window_start  DATE NOT NULL,
    window_end    DATE NOT NULL,
    metrics       VARCHAR NOT NULL,   -- JSON: log loss and accuracy of both
    decided_at    TIMESTAMPTZ NOT NULL
);
""",
)

MODEL_VERSIONS = Table(
    "model_versions",
    """
CREATE TABLE IF NOT EXISTS model_versions (
    version_id  VARCHAR PRIMARY KEY,
    parent_id   VARCHAR,                -- NULL for a model trained from scratch
    kind        VARCHAR NOT NULL,       -- initial | finetune | retrain
    config_hash VARCHAR NOT NULL,       -- sha256: model config, feature spec, training settings
    train_start DATE NOT NULL,          -- first decision session trained on
    train_end   DATE NOT NULL,          -- last decision session trained on
    metrics     VARCHAR NOT NULL,       -- JSON
    sha256      VARCHAR NOT NULL,       -- of the weights file bytes
    path        VARCHAR NOT NULL,       -- weights file name, relative to the models directory
    created_at  TIMESTAMPTZ NOT NULL
);
""",
)

MODEL_CHAMPION = Table(
    "model_champion",
    """
CREATE TABLE IF NOT EXISTS model_champion (
    seq         BIGINT PRIMARY KEY,     -- 1, 2, ...; the largest is the current champion
    version_id  VARCHAR NOT NULL,
    previous_id VARCHAR,
    action      VARCHAR NOT NULL,       -- initial | promote | rollback | fallback
    reason      VARCHAR NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL
);
""",
)

MODEL_TRAINING_DATA = Table(
    "model_training_data",
    """
CREATE TABLE IF NOT EXISTS model_training_data (
    version_id VARCHAR NOT NULL,
    session    DATE NOT NULL,
    role       VARCHAR NOT NULL         -- recent | replay | scratch
);
""",
)

PIPELINE_RUNS = Table(
    "pipeline_runs",
    """
CREATE TABLE IF NOT EXISTS pipeline_runs (
    symbol      VARCHAR NOT NULL,
    run_date    DATE NOT NULL,
    status      VARCHAR NOT NULL,      -- running | done | failed | waiting_for_data | late | held
    attempts    INTEGER NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,  -- first attempt (UTC)
    finished_at TIMESTAMPTZ,
    steps       VARCHAR NOT NULL,      -- JSON {step: {status, seconds, detail | error}}
    headline    VARCHAR,
    error       VARCHAR,
    PRIMARY KEY (symbol, run_date)
);
""",
)

LIVE_HOLDS = Table(
    "live_holds",
    """
CREATE TABLE IF NOT EXISTS live_holds (
    symbol      VARCHAR NOT NULL,
    session     DATE NOT NULL,
    source      VARCHAR NOT NULL,
    problems    VARCHAR NOT NULL,      -- JSON list of failed checks
    held_at     TIMESTAMPTZ NOT NULL,  -- UTC
    released_at TIMESTAMPTZ,
    released_by VARCHAR,
    PRIMARY KEY (symbol, session)
);
""",
)

RESEARCH_PREDICTIONS = Table(
    "research_predictions",
    """
CREATE TABLE IF NOT EXISTS research_predictions (
    run_id VARCHAR NOT NULL, session DATE NOT NULL, model VARCHAR NOT NULL,
    p_up DOUBLE NOT NULL, label TINYINT, PRIMARY KEY (run_id, session)
)
""",
)

# -- <store>.keys.sqlite ------------------------------------------------------------------------

API_KEYS = Table(
    "api_keys",
    """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    salt       BLOB NOT NULL,
    hash       BLOB NOT NULL,          -- scrypt(secret, salt); the key itself is never stored
    scopes     TEXT NOT NULL,          -- space-separated, from SCOPES
    last4      TEXT NOT NULL,          -- for display only
    created_at TEXT NOT NULL,          -- ISO 8601, UTC
    revoked_at TEXT                    -- ISO 8601, UTC; NULL while the key is valid
);
""",
    database="keys",
)

API_AUDIT = Table(
    "api_audit",
    """
CREATE TABLE IF NOT EXISTS api_audit (
    request_id       TEXT NOT NULL,
    at               TEXT NOT NULL,    -- ISO 8601, UTC, when the answer was sent
    key_id           TEXT,             -- never the key
    method           TEXT NOT NULL,
    route            TEXT NOT NULL,
    status           INTEGER NOT NULL,
    model_version    TEXT,
    snapshot_version TEXT,
    latency_ms       REAL NOT NULL
);
""",
    database="keys",
)

# -- <store>.jobs.sqlite ------------------------------------------------------------------------

APSCHEDULER_JOBS = Table(
    "apscheduler_jobs",
    """
CREATE TABLE IF NOT EXISTS apscheduler_jobs (
    id TEXT PRIMARY KEY,
    next_run_time REAL,
    job_state BLOB NOT NULL
)
""",
    database="jobs",
)

REGISTRY_TABLES = register_tables(MODEL_VERSIONS, MODEL_CHAMPION, MODEL_TRAINING_DATA)
# what the daily pipeline needs before its first step (``quant.pipeline.ensure_tables``)
PIPELINE_TABLES = register_tables(PIPELINE_RUNS, GATE_DECISIONS, *REGISTRY_TABLES)
register_tables(SIGNALS, LIVE_HOLDS, RESEARCH_PREDICTIONS)
KEY_TABLES = register_tables(API_KEYS, API_AUDIT)
JOB_TABLES = register_tables(APSCHEDULER_JOBS)
