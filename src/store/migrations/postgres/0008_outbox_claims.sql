-- Claims on pending SETs, so several replicas on one database never push one SET at once.
-- A worker marks the rows it is about to push with its per-process owner id and a lease end
-- (UNIX ms); another worker takes such a row only after the lease has ended (its owner died).
-- The outcome clears the claim, and is written only while the row is still claimed by its owner.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT;

-- The claim scans pending heads in acceptance order and filters on due time and lease: with
-- both in the index, rows that are not claimable are skipped without reading the table.
CREATE INDEX outbox_pending_claim ON outbox (stream_id, seq, next_attempt_at, claimed_until)
    WHERE status IN ('queued', 'retrying');
-- A stopping worker releases its own claims; SQLite's only writer clears stale ones at start.
CREATE INDEX outbox_claimed_by ON outbox (claimed_by) WHERE claimed_by IS NOT NULL;
