-- Standard SSF streams (SSF 1.0 §8.1.1), each owned by the API client that created it. The
-- receiver-supplied configuration (events requested, delivery, description) and the status
-- reason are in record (JSON); status is a column because delivery selects by it.
CREATE TABLE streams (
    stream_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX streams_client ON streams (client_id, created_at);
