-- API clients: callers of the HTTP API. Only a SHA-256 digest of each bearer token is kept.
CREATE TABLE api_clients (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,            -- space-separated scope names
    created_at  TEXT NOT NULL,            -- RFC 3339 UTC
    revoked_at  TEXT
);
-- A name is unique among clients that are not revoked; a revoked name may be reused.
CREATE UNIQUE INDEX api_clients_active_name ON api_clients (name) WHERE revoked_at IS NULL;

-- Append-only audit trail of administrative and enforcement actions.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,            -- API client name, `admin-token`, or `cli`
    action      TEXT NOT NULL,            -- e.g. key.activate, client.add
    target      TEXT,
    outcome     TEXT NOT NULL,            -- ok | error
    detail      TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
