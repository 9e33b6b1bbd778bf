-- Journeys and the messages they send. A journey is a definition (trigger, entry
-- condition, steps, re-entry rule, control group, conversion measure) stored as JSON; a
-- customer's way through one is an enrolment, unique per journey, customer and occasion
-- (an order, a birthday's year, a holiday's date), so an event handled twice or a daily
-- evaluation run twice enrols once. Quiet hours, the frequency cap and the channels' names
-- are the `journeys` document of `settings`.
CREATE TABLE journeys (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    definition  TEXT    NOT NULL,
    enabled     BIGINT  NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    version     BIGINT  NOT NULL DEFAULT 1,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE journey_enrollments (
    id           INTEGER PRIMARY KEY,
    journey_id   BIGINT  NOT NULL REFERENCES journeys(id) ON DELETE CASCADE,
    customer_id  BIGINT  NOT NULL,
    occasion     TEXT    NOT NULL,
    occasion_on  TEXT,
    status       TEXT    NOT NULL CHECK (status IN ('active','completed','exited','control')),
    step         BIGINT  NOT NULL DEFAULT 0,
    next_at      BIGINT,
    entered_at   BIGINT  NOT NULL,
    finished_at  BIGINT,
    UNIQUE (journey_id, customer_id, occasion)
);
CREATE INDEX journey_enrollments_due ON journey_enrollments (next_at) WHERE status = 'active';
CREATE INDEX journey_enrollments_customer ON journey_enrollments (customer_id, journey_id, entered_at);
CREATE INDEX journey_enrollments_journey ON journey_enrollments (journey_id, entered_at);

-- Message templates: one row per name, channel and locale; the body is a template of the
-- customer's fields, checked when saved.
CREATE TABLE message_templates (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    channel     TEXT    NOT NULL CHECK (channel IN ('email','sms','im','app')),
    locale      TEXT    NOT NULL,
    subject     TEXT    NOT NULL DEFAULT '',
    body        TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (name, channel, locale)
);

-- The outbox: a message is written in the transaction of the step that decides it, with
-- its text rendered, and delivered by workers that claim it under a lease. dedup_key makes
-- a step decide its message once. due_at is when it may go (quiet hours move it on);
-- send_by when it may go at the latest (the missed-send window); a message still queued
-- then is skipped as missed.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    customer_id   BIGINT  NOT NULL,
    journey_id    BIGINT,
    enrollment_id BIGINT,
    dedup_key     TEXT    NOT NULL UNIQUE,
    channel       TEXT    NOT NULL CHECK (channel IN ('email','sms','im','app')),
    class         TEXT    NOT NULL CHECK (class IN ('transactional','marketing')),
    priority      BIGINT  NOT NULL DEFAULT 5,
    template      TEXT    NOT NULL,
    locale        TEXT    NOT NULL,
    address       TEXT,
    subject       TEXT    NOT NULL DEFAULT '',
    body_text     TEXT    NOT NULL,
    body_html     TEXT,
    status        TEXT    NOT NULL CHECK (status IN ('queued','sending','sent','failed','skipped')),
    reason        TEXT    CHECK (reason IN ('no_consent','unsubscribed','invalid_address','capped','quiet_hours','missed','failed','no_channel')),
    detail        TEXT,
    attempts      BIGINT  NOT NULL DEFAULT 0,
    due_at        BIGINT  NOT NULL,
    send_by       BIGINT,
    locked_by     TEXT,
    locked_until  BIGINT,
    sent_at       BIGINT,
    read_at       BIGINT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX messages_due ON messages (due_at) WHERE status IN ('queued','sending');
CREATE INDEX messages_customer ON messages (customer_id, created_at, id);
CREATE INDEX messages_cap ON messages (customer_id, channel, created_at) WHERE class = 'marketing';
CREATE INDEX messages_journey ON messages (journey_id, status, reason);

-- A new kind of job: SQLite cannot change a CHECK constraint, so the table is rebuilt with
-- the longer list.
CREATE TABLE jobs_new (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('model_refresh','duplicates_rebuild','recommendations_build','analytics_refresh','loyalty_expire','loyalty_tiers','sla_scan','journey_schedules')),
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
