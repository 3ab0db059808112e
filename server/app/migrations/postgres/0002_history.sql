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
-- No other index: a replay reads one thread by the key's prefix (runs are put in start order in
-- memory), and retention, forget and the cap are rare. Every index is one more write per chunk.

-- A thread's title: the start of its first user message, for thread lists.
ALTER TABLE threads ADD COLUMN title TEXT;
