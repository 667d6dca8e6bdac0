-- The initial schema, SQLite flavour. Keep it column-for-column in step with
-- migrations/postgres/0001_initial.sql: the store runs the same queries on both.
--
-- Conventions (they keep sqlx's Any driver able to decode every column on both backends):
-- times are BIGINT epoch milliseconds, JSON is TEXT, flags are INTEGER 0/1 here (BOOLEAN on
-- PostgreSQL; queries read them through CASE), fractional numbers are REAL.

-- One row per routed request: what the client asked for and what the router decided.
CREATE TABLE requests (
    id              TEXT PRIMARY KEY NOT NULL,
    received_at     BIGINT NOT NULL,
    api             TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    profile         TEXT,
    stream          INTEGER NOT NULL,
    -- 'none' | 'hash' | 'full'; `prompt` is NULL exactly when nothing is kept.
    prompt_kind     TEXT NOT NULL,
    prompt          TEXT,
    message_count   BIGINT NOT NULL,
    features        TEXT NOT NULL,
    language        TEXT,
    domain          TEXT,
    complexity      TEXT,
    chosen_model    TEXT NOT NULL,
    source          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    ranking         TEXT NOT NULL,
    decision_us     BIGINT NOT NULL,
    CHECK ((prompt_kind = 'none') = (prompt IS NULL))
);
CREATE INDEX requests_received_at ON requests (received_at);

-- How each request ended. Deliberately no foreign key to requests: the batching writer may
-- commit an outcome before (or without) its request row, and neither write may fail for it.
CREATE TABLE outcomes (
    request_id    TEXT PRIMARY KEY NOT NULL,
    finished_at   BIGINT NOT NULL,
    status        TEXT NOT NULL,
    http_status   BIGINT NOT NULL,
    model         TEXT,
    deployment    TEXT,
    latency_ms    BIGINT NOT NULL,
    ttft_ms       BIGINT,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd      REAL NOT NULL,
    error_kind    TEXT,
    error_message TEXT,
    attempts      TEXT NOT NULL
);
CREATE INDEX outcomes_finished_at ON outcomes (finished_at);

-- At most one piece of feedback per decision: a later one replaces it.
CREATE TABLE feedback (
    decision_id TEXT PRIMARY KEY NOT NULL,
    created_at  BIGINT NOT NULL,
    score       REAL NOT NULL CHECK (score >= 0 AND score <= 1),
    rating      BIGINT CHECK (rating BETWEEN 1 AND 5),
    comment     TEXT
);
CREATE INDEX feedback_created_at ON feedback (created_at);

-- Opaque JSON blobs the gateway serialises (learned posteriors, priors), by name.
CREATE TABLE learned_state (
    name       TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Operator changes made through the dashboard.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    detail     TEXT
);
CREATE INDEX audit_log_created_at ON audit_log (created_at);
