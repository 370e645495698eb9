-- A receiver's 429 pauses its whole stream until the time it named (ms), for every replica:
-- no SET of the stream is claimed before paused_until. Kept across restarts.
CREATE TABLE stream_pause (
    stream_id TEXT PRIMARY KEY,
    paused_until INTEGER NOT NULL
);
