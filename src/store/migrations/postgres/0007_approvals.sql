-- Approvals: a containment waiting for a person. The link's token is stored only as its SHA-256
-- digest; a decided approval never matches a token again.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY NOT NULL,
    containment_id TEXT NOT NULL REFERENCES containments (id),
    status TEXT NOT NULL,
    token_digest BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    record TEXT NOT NULL
);
CREATE INDEX approvals_status ON approvals (status, created_at);
