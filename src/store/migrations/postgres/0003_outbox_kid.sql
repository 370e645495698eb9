-- The signing key of each SET, so a key is not retired while SETs it signed wait for delivery.
ALTER TABLE outbox ADD COLUMN kid TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_pending_kid ON outbox (kid) WHERE status IN ('queued', 'retrying');
-- Pending rows in acceptance order: the delivery worker scans heads in this order.
CREATE INDEX outbox_pending_seq ON outbox (stream_id, seq) WHERE status IN ('queued', 'retrying');
