-- Done jobs are deleted after `[jobs] keep_days` (crates/kernel/src/jobs.rs, sweep_done): this index finds the
-- oldest done ones without reading the whole table (the jobs still to run have their own index, jobs_due).
CREATE INDEX jobs_done ON jobs(done_at) WHERE done_at IS NOT NULL;
