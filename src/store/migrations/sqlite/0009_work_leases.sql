-- Leases on durable enforcement work, so several replicas share it: a containment being run or
-- released, and a bulk-job item being acted on, is held by one process (claimed_by) until
-- claimed_until (ms); a lease that ran out belongs to a process that died, and another takes it.
ALTER TABLE containments ADD COLUMN claimed_by TEXT;
ALTER TABLE containments ADD COLUMN claimed_until INTEGER;
ALTER TABLE job_items ADD COLUMN claimed_by TEXT;
ALTER TABLE job_items ADD COLUMN claimed_until INTEGER;
