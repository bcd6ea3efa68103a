-- Background jobs: a queue in the database that any node can run. A job is claimed under a
-- lease (a node that dies loses it when the lease runs out, and another takes the job over),
-- retried with back-off until its attempts are spent, and enqueued at most once per
-- idempotency key (a scheduled job's key names its period, so every node may enqueue it and it
-- runs once). Progress is recorded for the long ones (campaigns, key rotations).
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    run_after       BIGINT NOT NULL,
    lease_holder    TEXT,
    lease_until     BIGINT,
    progress_done   BIGINT NOT NULL DEFAULT 0,
    progress_total  BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX jobs_ready ON jobs (state, run_after);
