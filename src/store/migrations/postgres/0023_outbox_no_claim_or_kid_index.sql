-- Two more indexes every SET wrote twice (with its claim or acceptance, and again with its
-- outcome) for look-ups that are rare: releasing a stopping worker's claims, and counting the
-- SETs still waiting on a key before it is retired. Both now read the pending SETs through the
-- pending indexes (claims and keys only matter while a SET is pending).
DROP INDEX outbox_pending_kid;
DROP INDEX outbox_claimed_by;
