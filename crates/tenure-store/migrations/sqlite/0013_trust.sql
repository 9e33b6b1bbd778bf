-- The audit log. Each change-log entry now carries, for a change to one record, the fields
-- that changed with their value before and after (`fields`, a JSON object of
-- `field: [before, after]`). What a record looked like after its last change is kept in
-- audit_snapshots, so the next change is compared with it inside the same transaction.
-- Erasing a customer clears both of their personal values.
CREATE TABLE change_log_new (
    id          INTEGER PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor_kind  TEXT    NOT NULL CHECK (actor_kind IN ('token','user','cli','system')),
    actor_id    BIGINT,
    actor_name  TEXT    NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('api','web','cli','import','job')),
    entity      TEXT    NOT NULL CHECK (entity IN ('customer','order','interaction','account','product','category','merge','user','token','predictions','recommendations','aggregates','duplicates','job','segment','settings','lifecycle','analytics','loyalty','reward','coupon','ticket','task','survey','webhook')),
    entity_id   BIGINT,
    operation   TEXT    NOT NULL CHECK (operation IN ('create','update','delete','merge','undo','import','revoke','rebuild','erase','export')),
    customer_id BIGINT,
    detail      TEXT,
    fields      TEXT
);
INSERT INTO change_log_new SELECT id, at, actor_kind, actor_id, actor_name, source, entity,
    entity_id, operation, customer_id, detail, NULL FROM change_log;
DROP TABLE change_log;
ALTER TABLE change_log_new RENAME TO change_log;
CREATE INDEX change_log_customer ON change_log (customer_id, id) WHERE customer_id IS NOT NULL;
CREATE INDEX change_log_at ON change_log (at, id);
CREATE INDEX change_log_actor ON change_log (actor_name, id);

CREATE TABLE audit_snapshots (
    entity      TEXT    NOT NULL,
    entity_id   BIGINT  NOT NULL,
    customer_id BIGINT,
    state       TEXT    NOT NULL,
    PRIMARY KEY (entity, entity_id)
);
CREATE INDEX audit_snapshots_customer ON audit_snapshots (customer_id) WHERE customer_id IS NOT NULL;

-- Outgoing webhooks: endpoints that are told of customer, stage, ticket and loyalty events.
-- A delivery is written in the transaction of the write that caused the event (an
-- outbox), claimed by a worker, signed with the endpoint's secret, retried with backoff,
-- and kept with its attempts and last answer as the delivery log. Payloads carry ids only.
CREATE TABLE webhook_endpoints (
    id            INTEGER PRIMARY KEY,
    url           TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    secret        TEXT    NOT NULL,
    events        TEXT    NOT NULL DEFAULT '[]',
    enabled       BIGINT  NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE TABLE webhook_deliveries (
    id            INTEGER PRIMARY KEY,
    endpoint_id   BIGINT  NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event         TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('queued','sending','delivered','failed')),
    attempts      BIGINT  NOT NULL DEFAULT 0,
    due_at        BIGINT  NOT NULL,
    locked_by     TEXT,
    locked_until  BIGINT,
    response_code BIGINT,
    last_error    TEXT,
    created_at    BIGINT  NOT NULL,
    delivered_at  BIGINT,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, due_at, id);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

-- The retention job: SQLite cannot change a CHECK constraint, so the job table is rebuilt.
CREATE TABLE jobs_new (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('model_refresh','duplicates_rebuild','recommendations_build','analytics_refresh','loyalty_expire','loyalty_tiers','sla_scan','journey_schedules','retention')),
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
INSERT INTO jobs_new SELECT id, kind, payload, unique_key, keep_key, status, run_at, attempts,
    max_attempts, locked_by, locked_until, last_error, created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (status, run_at, id);
