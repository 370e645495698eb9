-- A counter every change to a stream or its subjects raises. Intake reads it to know whether
-- the routes it keeps in memory (which streams want which events about which subjects) are
-- still current, on this replica or after another replica changed a stream.
CREATE TABLE stream_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO stream_generation (id, generation) VALUES (1, 0);
