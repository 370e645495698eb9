-- When the receiver first refused this SET's signature or issuer (invalid_key,
-- authentication_failed, invalid_issuer) in the current run of such refusals; these are retried
-- for `[delivery] verify_retry_secs` from here before the SET is `failed`.
ALTER TABLE outbox ADD COLUMN verify_failing_since BIGINT;

-- The writer forgets a failed SET's state by its jti: without this every outcome scanned the table.
CREATE INDEX subject_state_jti ON subject_state (jti) WHERE jti IS NOT NULL;

-- Pruning finds finished SETs by status and age.
CREATE INDEX outbox_finished_age ON outbox (status, updated_at)
    WHERE status IN ('delivered', 'failed', 'dead');

-- One row the readiness probe rewrites through the store's writer, to prove it can commit.
CREATE TABLE store_probe (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    at  BIGINT NOT NULL
);
