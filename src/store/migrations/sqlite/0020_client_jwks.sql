-- OAuth 2.0 private_key_jwt (RFC 7523): the public keys an API client signs its token-endpoint
-- assertions with, as a JWKS (JSON text, validated and normalised by the service: RSA of at least
-- 2048 bits or EC P-256, public members only). NULL: the client authenticates with its secret only.
ALTER TABLE api_clients ADD COLUMN jwks TEXT;
