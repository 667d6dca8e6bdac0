-- One row per request: the outcome's columns join the request's. A request then costs one
-- row and two index entries (its id, its time) instead of two rows and four entries, and
-- the reads need no join. Keep it column-for-column in step with
-- migrations/postgres/0002_one_row_per_request.sql.
--
-- A row holds a request's part, its outcome's part, or both; the store writes each part
-- whole. The request's part is what the router decided; the outcome's part is NULL until
-- the request has ended. A row with only an outcome is rare (the outcome was stored before
-- its request, or its request never was) and the reads skip it, as they skipped such
-- outcomes before. SQLite cannot drop NOT NULL from a column, so the table is rebuilt.
CREATE TABLE requests_v2 (
    id              TEXT PRIMARY KEY NOT NULL,
    -- The request's part.
    received_at     BIGINT,
    api             TEXT,
    requested_model TEXT,
    profile         TEXT,
    stream          INTEGER,
    -- 'none' | 'hash' | 'full'; `prompt` is NULL exactly when nothing is kept.
    prompt_kind     TEXT,
    prompt          TEXT,
    message_count   BIGINT,
    features        TEXT,
    language        TEXT,
    domain          TEXT,
    complexity      TEXT,
    chosen_model    TEXT,
    source          TEXT,
    reason          TEXT,
    ranking         TEXT,
    decision_us     BIGINT,
    -- The outcome's part.
    finished_at     BIGINT,
    status          TEXT,
    http_status     BIGINT,
    model           TEXT,
    deployment      TEXT,
    latency_ms      BIGINT,
    ttft_ms         BIGINT,
    input_tokens    BIGINT,
    output_tokens   BIGINT,
    cost_usd        REAL,
    error_kind      TEXT,
    error_message   TEXT,
    attempts        TEXT,
    CHECK (received_at IS NOT NULL OR finished_at IS NOT NULL),
    CHECK ((prompt_kind = 'none') = (prompt IS NULL))
);

INSERT INTO requests_v2
SELECT r.id, r.received_at, r.api, r.requested_model, r.profile, r.stream, r.prompt_kind,
       r.prompt, r.message_count, r.features, r.language, r.domain, r.complexity,
       r.chosen_model, r.source, r.reason, r.ranking, r.decision_us,
       o.finished_at, o.status, o.http_status, o.model, o.deployment, o.latency_ms, o.ttft_ms,
       o.input_tokens, o.output_tokens, o.cost_usd, o.error_kind, o.error_message, o.attempts
FROM requests r LEFT JOIN outcomes o ON o.request_id = r.id;

INSERT INTO requests_v2 (id, finished_at, status, http_status, model, deployment, latency_ms,
                         ttft_ms, input_tokens, output_tokens, cost_usd, error_kind,
                         error_message, attempts)
SELECT o.request_id, o.finished_at, o.status, o.http_status, o.model, o.deployment,
       o.latency_ms, o.ttft_ms, o.input_tokens, o.output_tokens, o.cost_usd, o.error_kind,
       o.error_message, o.attempts
FROM outcomes o WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = o.request_id);

DROP TABLE outcomes;
DROP TABLE requests;
ALTER TABLE requests_v2 RENAME TO requests;
-- Also how the retention policy finds the rows with no request's part (received_at IS NULL).
CREATE INDEX requests_received_at ON requests (received_at);
