-- Subjects a receiver added to (state 'added') or removed from (state 'removed') its stream
-- (SSF 1.0 §8.1.3). With default_subjects NONE only added subjects are delivered; with ALL every
-- subject but the removed ones.
CREATE TABLE stream_subjects (
    stream_id TEXT NOT NULL,
    subject_key TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (stream_id, subject_key)
);
