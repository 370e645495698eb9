-- Containment playbooks and bulk jobs. The domain record (steps, their outcomes, the undo list) is
-- one JSON document per row; the columns beside it are what queries select and order on.
CREATE TABLE containments (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL,
    user_id TEXT,
    user_login TEXT,
    -- When the durable timer releases it (ms since the epoch); NULL: no timer.
    release_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX containments_due ON containments (release_at) WHERE release_at IS NOT NULL;
CREATE INDEX containments_user ON containments (user_id, created_at);
CREATE INDEX containments_status ON containments (status, created_at);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL,
    total BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX jobs_status ON jobs (status);

-- One row per user of a job, in the order given. status: pending, running, done, failed.
CREATE TABLE job_items (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    idx BIGINT NOT NULL,
    user_input TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX job_items_status ON job_items (job_id, status, idx);
