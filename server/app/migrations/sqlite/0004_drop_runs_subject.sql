-- runs(issuer, subject) is written on every run start and read by no query: runs are found by
-- their primary key (thread_id, run_id) or, when open, by runs_open; forgetting a subject
-- filters on `subject = ? AND (? IS NULL OR issuer = ?)`, which cannot seek an index led by
-- issuer (it scanned before this too, and it is a rare operator command).
DROP INDEX runs_subject;
