-- Indexes nothing reads often enough to pay for their write on every run:
-- audit(at) repeats the order of the increasing id (retention and `audit --since` scan instead),
-- runs(run_id) served the tool-call count keyed by run id alone, which is now (thread_id, run_id),
-- the primary key.
DROP INDEX audit_at;
DROP INDEX runs_run_id;
