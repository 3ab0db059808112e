-- agui-server store, SQLite. Timestamps are integer milliseconds since the Unix epoch (UTC).
-- The thread id is the key: a thread has exactly one owner, (issuer, subject), set by the first
-- run that names it (INSERT ... ON CONFLICT DO NOTHING, then read the owner back).
CREATE TABLE threads (
    thread_id   TEXT PRIMARY KEY NOT NULL,
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_run_at INTEGER
);
CREATE INDEX threads_owner ON threads (issuer, subject, last_run_at);

-- One row per run. ended_at IS NULL while the run streams; a run whose process died is marked
-- 'abandoned' by the next start-up (or by a live replica once the dead one's heartbeat is stale).
CREATE TABLE runs (
    thread_id         TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    issuer            TEXT NOT NULL,
    subject           TEXT NOT NULL,
    agent             TEXT NOT NULL,
    credential_source TEXT NOT NULL,
    instance          TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    outcome           TEXT CHECK (outcome IN ('success', 'error', 'cancelled', 'abandoned')),
    error_code        TEXT,
    usage             TEXT,
    tool_calls        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (thread_id, run_id)
);
CREATE INDEX runs_run_id ON runs (run_id);
CREATE INDEX runs_subject ON runs (issuer, subject);
CREATE INDEX runs_open ON runs (instance) WHERE ended_at IS NULL;

-- Append-only audit log. detail is a JSON object; it never holds a token (only its fingerprint).
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    issuer    TEXT,
    subject   TEXT,
    thread_id TEXT,
    run_id    TEXT,
    detail    TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_subject ON audit (subject, at);
CREATE INDEX audit_thread ON audit (thread_id, at);

-- Server processes and their last heartbeat, so open runs of a dead process can be told apart
-- from runs of a live one.
CREATE TABLE instances (
    instance_id  TEXT PRIMARY KEY NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
