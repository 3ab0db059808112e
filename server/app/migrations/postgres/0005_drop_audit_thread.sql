-- audit(thread_id, at) is written on every audit record of a run (its start and its end), at a
-- random place: the thread id is the client's (a random UUID for CopilotKit), so each record
-- dirties a leaf of its own, written whole to the WAL and again by the checkpoint. Only the
-- operator command `agui-server audit --thread` reads by thread, and it scans instead (as
-- `audit --since` has since 0003); records of one subject still seek `audit_subject`.
DROP INDEX audit_thread;
