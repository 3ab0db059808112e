-- Thread history: the events each run streamed (what its client saw), compacted, in chunks of one
-- batch window each. A run's chunks are numbered from 0 by the one replica that ran it; replay
-- orders runs by their start and chunks by number.
CREATE TABLE history (
    thread_id  TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    chunk      INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    events     TEXT NOT NULL,
    PRIMARY KEY (thread_id, run_id, chunk)
);
CREATE INDEX history_replay ON history (thread_id, started_at, run_id, chunk);
CREATE INDEX history_at ON history (at);

-- A thread's title: the start of its first user message, for thread lists.
ALTER TABLE threads ADD COLUMN title TEXT;
