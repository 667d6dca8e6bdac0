-- One row per request: the outcome's columns join the request's. A request then costs one
-- row and two index entries (its id, its time) instead of two rows and four entries, and
-- the reads need no join. Keep it column-for-column in step with
-- migrations/sqlite/0002_one_row_per_request.sql.
--
-- A row holds a request's part, its outcome's part, or both; the store writes each part
-- whole. The request's part is what the router decided; the outcome's part is NULL until
-- the request has ended. A row with only an outcome is rare (the outcome was stored before
-- its request, or its request never was) and the reads skip it, as they skipped such
-- outcomes before.
ALTER TABLE requests
    ALTER COLUMN received_at DROP NOT NULL,
    ALTER COLUMN api DROP NOT NULL,
    ALTER COLUMN requested_model DROP NOT NULL,
    ALTER COLUMN stream DROP NOT NULL,
    ALTER COLUMN prompt_kind DROP NOT NULL,
    ALTER COLUMN message_count DROP NOT NULL,
    ALTER COLUMN features DROP NOT NULL,
    ALTER COLUMN chosen_model DROP NOT NULL,
    ALTER COLUMN source DROP NOT NULL,
    ALTER COLUMN reason DROP NOT NULL,
    ALTER COLUMN ranking DROP NOT NULL,
    ALTER COLUMN decision_us DROP NOT NULL,
    ADD COLUMN finished_at   BIGINT,
    ADD COLUMN status        TEXT,
    ADD COLUMN http_status   BIGINT,
    ADD COLUMN model         TEXT,
    ADD COLUMN deployment    TEXT,
    ADD COLUMN latency_ms    BIGINT,
    ADD COLUMN ttft_ms       BIGINT,
    ADD COLUMN input_tokens  BIGINT,
    ADD COLUMN output_tokens BIGINT,
    ADD COLUMN cost_usd      DOUBLE PRECISION,
    ADD COLUMN error_kind    TEXT,
    ADD COLUMN error_message TEXT,
    ADD COLUMN attempts      TEXT,
    ADD CHECK (received_at IS NOT NULL OR finished_at IS NOT NULL);

UPDATE requests r
SET finished_at = o.finished_at, status = o.status, http_status = o.http_status,
    model = o.model, deployment = o.deployment, latency_ms = o.latency_ms,
    ttft_ms = o.ttft_ms, input_tokens = o.input_tokens, output_tokens = o.output_tokens,
    cost_usd = o.cost_usd, error_kind = o.error_kind, error_message = o.error_message,
    attempts = o.attempts
FROM outcomes o WHERE o.request_id = r.id;

INSERT INTO requests (id, finished_at, status, http_status, model, deployment, latency_ms,
                      ttft_ms, input_tokens, output_tokens, cost_usd, error_kind,
                      error_message, attempts)
SELECT o.request_id, o.finished_at, o.status, o.http_status, o.model, o.deployment,
       o.latency_ms, o.ttft_ms, o.input_tokens, o.output_tokens, o.cost_usd, o.error_kind,
       o.error_message, o.attempts
FROM outcomes o WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = o.request_id);

DROP TABLE outcomes;
