-- Signed SETs waiting for, or done with, delivery. Times are UNIX milliseconds.
CREATE TABLE outbox (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,   -- acceptance order
    jti               TEXT NOT NULL UNIQUE,
    stream_id         TEXT NOT NULL,                       -- the receiver (`okta`)
    subject_key       TEXT NOT NULL,                       -- per-subject FIFO key
    subject           TEXT NOT NULL,                       -- the subject as JSON (for listing)
    event_type        TEXT NOT NULL,
    set_jwt           TEXT NOT NULL,
    client            TEXT NOT NULL,                       -- API client that sent it
    status            TEXT NOT NULL CHECK (status IN ('queued', 'retrying', 'delivered', 'failed', 'dead')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    queued_at         INTEGER NOT NULL,                    -- max age counts from here (reset by a manual retry)
    next_attempt_at   INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    delivered_at      INTEGER,
    last_http_status  INTEGER,
    last_err          TEXT,                                -- the receiver's `err`
    last_description  TEXT,                                -- the receiver's `description`
    last_error        TEXT                                 -- our own words (timeout, connection refused, …)
);
CREATE INDEX outbox_pending_by_subject ON outbox (stream_id, subject_key, seq)
    WHERE status IN ('queued', 'retrying');
CREATE INDEX outbox_pending_due ON outbox (stream_id, next_attempt_at)
    WHERE status IN ('queued', 'retrying');
CREATE INDEX outbox_status_seq ON outbox (status, seq);
CREATE INDEX outbox_subject_seq ON outbox (subject_key, seq);

-- The last value accepted per subject and kind (risk level, compliance status).
CREATE TABLE subject_state (
    stream_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    subject_key  TEXT NOT NULL,
    value        TEXT NOT NULL,
    jti          TEXT,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (stream_id, kind, subject_key)
);

-- Responses to requests that carried an Idempotency-Key, per API client.
CREATE TABLE idempotency (
    client        TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (client, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);
