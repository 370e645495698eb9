-- The stable id of the API client behind each audit row, beside its name: names can be reused
-- after a revocation, ids cannot. Rows written before this migration have none.
ALTER TABLE audit_log ADD COLUMN actor_id TEXT;
CREATE INDEX audit_log_actor_id ON audit_log (actor_id);
