-- The application core: the change log every write appends to, the durable job queue with
-- a record of each run, duplicate candidates kept current on every customer write, and
-- API tokens that can expire.

-- One entry per domain event, written in the transaction of the write that emitted it.
-- It names who (actor), through what (source), what (entity, id, operation) and, when
-- the change concerns a customer, which one; ids only, no personal data.
CREATE TABLE change_log (
    id          INTEGER PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor_kind  TEXT    NOT NULL CHECK (actor_kind IN ('token','user','cli','system')),
    actor_id    BIGINT,
    actor_name  TEXT    NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('api','web','cli','import','job')),
    entity      TEXT    NOT NULL CHECK (entity IN ('customer','order','interaction','account','product','category','merge','user','token','predictions','recommendations','aggregates','duplicates','job')),
    entity_id   BIGINT,
    operation   TEXT    NOT NULL CHECK (operation IN ('create','update','delete','merge','undo','import','revoke','rebuild')),
    customer_id BIGINT,
    detail      TEXT
);
CREATE INDEX change_log_customer ON change_log (customer_id, id) WHERE customer_id IS NOT NULL;
CREATE INDEX change_log_at ON change_log (at, id);

-- Scheduled and queued work. A worker claims a due job (status queued, run_at passed, or
-- running with an expired lease) and holds it until locked_until. unique_key makes a
-- schedule's slot run once however many workers run (kept for good), or keeps a second
-- copy of pending work from being queued (released when the job ends).
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('model_refresh','duplicates_rebuild','recommendations_build')),
    payload      TEXT    NOT NULL DEFAULT '{}',
    unique_key   TEXT    UNIQUE,
    keep_key     BIGINT  NOT NULL DEFAULT 0 CHECK (keep_key IN (0, 1)),
    status       TEXT    NOT NULL CHECK (status IN ('queued','running','done','failed')),
    run_at       BIGINT  NOT NULL,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    max_attempts BIGINT  NOT NULL DEFAULT 5,
    locked_by    TEXT,
    locked_until BIGINT,
    last_error   TEXT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, run_at, id);

CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY,
    job_id      BIGINT  NOT NULL,
    worker      TEXT    NOT NULL,
    attempt     BIGINT  NOT NULL,
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT  NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('succeeded','retrying','gave_up')),
    error       TEXT,
    detail      TEXT
);
CREATE INDEX job_runs_job ON job_runs (job_id, id);

-- Likely duplicate pairs (lower id first), kept current by every customer write and
-- rebuilt by `tenure duplicates rebuild`. rank = 1000 - score in thousandths, so the
-- best pairs come first in one ascending index walk.
CREATE TABLE duplicate_pairs (
    a_id            BIGINT  NOT NULL,
    b_id            BIGINT  NOT NULL,
    reasons         TEXT    NOT NULL,
    name_similarity REAL NOT NULL,
    score_milli     BIGINT  NOT NULL,
    rank            BIGINT  NOT NULL,
    PRIMARY KEY (a_id, b_id)
);
CREATE INDEX duplicate_pairs_rank ON duplicate_pairs (rank, a_id, b_id);
CREATE INDEX duplicate_pairs_b ON duplicate_pairs (b_id, a_id);

ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
