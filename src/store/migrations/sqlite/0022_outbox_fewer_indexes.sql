-- Every index on the outbox is written with every SET and again with its outcome. These two
-- served nothing the claim index does not: outbox_pending_claim (stream_id, seq, next_attempt_at,
-- claimed_until) has the same partial predicate and starts with (stream_id, seq); the rare
-- scans by due time (a receiver back up, the next wake-up) read the stream's pending rows anyway.
DROP INDEX outbox_pending_seq;
DROP INDEX outbox_pending_due;
