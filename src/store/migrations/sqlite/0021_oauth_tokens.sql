-- Short-lived OAuth 2.0 access tokens (client credentials, RFC 6749 §4.4). Like client tokens,
-- only a SHA-256 digest is kept. A token works while it has not expired and its client is not
-- revoked (checked on every use), so revoking a client ends its access tokens at once.
CREATE TABLE oauth_access_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES api_clients (id),
    scopes TEXT NOT NULL,                 -- space-separated, a subset of the client's
    issued_at INTEGER NOT NULL,           -- ms since the epoch
    expires_at INTEGER NOT NULL           -- ms since the epoch
);
CREATE INDEX oauth_access_tokens_expiry ON oauth_access_tokens (expires_at);

-- The jti of every private_key_jwt client assertion accepted, kept until the assertion could no
-- longer be accepted anyway (its exp plus the allowed clock skew), so none is accepted twice.
CREATE TABLE oauth_assertion_jtis (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,          -- ms since the epoch
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX oauth_assertion_jtis_expiry ON oauth_assertion_jtis (expires_at);
