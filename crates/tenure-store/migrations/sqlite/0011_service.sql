-- Service: tickets with their messages and status history, follow-up tasks, surveys with
-- their single-use invitations and answers, and each customer's latest feedback. The
-- calendar, SLA policies and follow-up rules are the `service` document of `settings`.

-- A ticket's SLA clocks are due times in UTC computed in business hours: paused_at is set
-- while the ticket waits on the customer (the scan skips it) and on resuming the due times
-- move on by the business time it waited. first_response_minutes and resolution_minutes
-- are the business minutes it took (pauses left out), for the agents' report.
CREATE TABLE tickets (
    id                       INTEGER PRIMARY KEY,
    external_id              TEXT    UNIQUE,
    customer_id              BIGINT  NOT NULL,
    subject                  TEXT    NOT NULL,
    category                 TEXT    NOT NULL CHECK (category IN ('product_quality','late_delivery','wrong_specification','packaging','service_attitude','billing','other')),
    priority                 TEXT    NOT NULL CHECK (priority IN ('low','normal','high','urgent')),
    channel                  TEXT    NOT NULL CHECK (channel IN ('phone','email','sms','chat','social','in_person','app','web')),
    status                   TEXT    NOT NULL CHECK (status IN ('new','open','pending_customer','resolved','closed','reopened')),
    assignee_id              BIGINT,
    opened_at                BIGINT  NOT NULL,
    first_response_at        BIGINT,
    first_response_due       BIGINT,
    resolution_due           BIGINT,
    paused_at                BIGINT,
    paused_minutes           BIGINT  NOT NULL DEFAULT 0,
    resolved_at              BIGINT,
    closed_at                BIGINT,
    first_response_breached  BIGINT  NOT NULL DEFAULT 0 CHECK (first_response_breached IN (0, 1)),
    resolution_breached      BIGINT  NOT NULL DEFAULT 0 CHECK (resolution_breached IN (0, 1)),
    warned                   BIGINT  NOT NULL DEFAULT 0 CHECK (warned IN (0, 1)),
    first_response_minutes   BIGINT,
    resolution_minutes       BIGINT,
    response_id              BIGINT,
    version                  BIGINT  NOT NULL DEFAULT 1,
    created_by               TEXT    NOT NULL,
    updated_at               BIGINT  NOT NULL
);
CREATE INDEX tickets_customer ON tickets (customer_id, opened_at, id);
CREATE INDEX tickets_status ON tickets (status, id);
CREATE INDEX tickets_assignee ON tickets (assignee_id, status, id);
CREATE INDEX tickets_opened ON tickets (opened_at, id);
CREATE INDEX tickets_first_response_due ON tickets (first_response_due)
    WHERE first_response_at IS NULL AND first_response_breached = 0 AND paused_at IS NULL;
CREATE INDEX tickets_resolution_due ON tickets (resolution_due)
    WHERE resolved_at IS NULL AND resolution_breached = 0 AND paused_at IS NULL;

-- Replies to the customer, the customer's own words and internal notes, with attachments
-- by reference (name and address, as JSON).
CREATE TABLE ticket_messages (
    id           INTEGER PRIMARY KEY,
    ticket_id    BIGINT  NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    customer_id  BIGINT  NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('reply','note','customer')),
    body         TEXT    NOT NULL,
    attachments  TEXT    NOT NULL DEFAULT '[]',
    author_id    BIGINT,
    author_name  TEXT    NOT NULL,
    at           BIGINT  NOT NULL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket_id, id);
CREATE INDEX ticket_messages_customer ON ticket_messages (customer_id);

-- Every status move of a ticket.
CREATE TABLE ticket_events (
    id           INTEGER PRIMARY KEY,
    ticket_id    BIGINT  NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    customer_id  BIGINT  NOT NULL,
    at           BIGINT  NOT NULL,
    from_status  TEXT    CHECK (from_status IN ('new','open','pending_customer','resolved','closed','reopened')),
    to_status    TEXT    NOT NULL CHECK (to_status IN ('new','open','pending_customer','resolved','closed','reopened')),
    actor_name   TEXT    NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);
CREATE INDEX ticket_events_customer ON ticket_events (customer_id);

-- Follow-up tasks. remind_at is when the reminder goes out (always within business hours),
-- reminded_at when it went. source_key makes a rule's task once (`callback:ticket:7`).
CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY,
    title        TEXT    NOT NULL,
    note         TEXT    NOT NULL DEFAULT '',
    customer_id  BIGINT,
    ticket_id    BIGINT,
    assignee_id  BIGINT,
    due_at       BIGINT  NOT NULL,
    remind_at    BIGINT,
    reminded_at  BIGINT,
    status       TEXT    NOT NULL CHECK (status IN ('open','done','cancelled')),
    source       TEXT    NOT NULL CHECK (source IN ('manual','callback','next_contact','thank_you','escalation','journey')),
    source_key   TEXT    UNIQUE,
    created_by   TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    done_at      BIGINT,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX tasks_assignee ON tasks (assignee_id, status, due_at, id);
CREATE INDEX tasks_customer ON tasks (customer_id, created_at, id);
CREATE INDEX tasks_due ON tasks (status, due_at, id);
CREATE INDEX tasks_remind ON tasks (remind_at) WHERE reminded_at IS NULL AND remind_at IS NOT NULL;

CREATE TABLE surveys (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('csat','nps','servqual','custom')),
    definition   TEXT    NOT NULL,
    active       BIGINT  NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

-- A single-use link: only the SHA-256 of its token is kept. source_key makes a rule's
-- invitation once (`csat:ticket:7`).
CREATE TABLE survey_invitations (
    id           INTEGER PRIMARY KEY,
    survey_id    BIGINT  NOT NULL REFERENCES surveys(id),
    customer_id  BIGINT  NOT NULL,
    ticket_id    BIGINT,
    token_hash   TEXT    NOT NULL UNIQUE,
    source_key   TEXT    UNIQUE,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    answered_at  BIGINT,
    response_id  BIGINT
);
CREATE INDEX survey_invitations_customer ON survey_invitations (customer_id, id);
CREATE INDEX survey_invitations_ticket ON survey_invitations (ticket_id) WHERE ticket_id IS NOT NULL;

-- One answer. score is CSAT's or NPS's; the SERVQUAL means per dimension (e_ expectation,
-- p_ perception), the importance split and the gaps are computed when it is recorded, so
-- reports over millions of answers read columns. agent_id is the ticket's assignee.
CREATE TABLE survey_responses (
    id              INTEGER PRIMARY KEY,
    external_id     TEXT    UNIQUE,
    survey_id       BIGINT  NOT NULL REFERENCES surveys(id),
    kind            TEXT    NOT NULL CHECK (kind IN ('csat','nps','servqual','custom')),
    customer_id     BIGINT  NOT NULL,
    invitation_id   BIGINT  UNIQUE,
    ticket_id       BIGINT,
    agent_id        BIGINT,
    channel         TEXT    CHECK (channel IN ('phone','email','sms','chat','social','in_person','app','web')),
    score           BIGINT,
    nps_group       TEXT    CHECK (nps_group IN ('promoter','passive','detractor')),
    comment         TEXT,
    answered_at     BIGINT  NOT NULL,
    recorded_by     TEXT    NOT NULL,
    e_tangibles     REAL, p_tangibles     REAL,
    e_reliability   REAL, p_reliability   REAL,
    e_responsiveness REAL, p_responsiveness REAL,
    e_assurance     REAL, p_assurance     REAL,
    e_empathy       REAL, p_empathy       REAL,
    w_tangibles     BIGINT, w_reliability BIGINT, w_responsiveness BIGINT, w_assurance BIGINT, w_empathy BIGINT,
    gap             REAL,
    weighted_gap    REAL,
    opened_ticket_id BIGINT
);
CREATE INDEX survey_responses_customer ON survey_responses (customer_id, answered_at, id);
CREATE INDEX survey_responses_kind ON survey_responses (kind, answered_at);
CREATE INDEX survey_responses_survey ON survey_responses (survey_id, answered_at);
CREATE INDEX survey_responses_ticket ON survey_responses (ticket_id) WHERE ticket_id IS NOT NULL;

CREATE TABLE survey_answers (
    response_id  BIGINT  NOT NULL REFERENCES survey_responses(id) ON DELETE CASCADE,
    customer_id  BIGINT  NOT NULL,
    question     TEXT    NOT NULL,
    value        BIGINT,
    expectation  BIGINT,
    choice       TEXT,
    text         TEXT,
    PRIMARY KEY (response_id, question)
);
CREATE INDEX survey_answers_customer ON survey_answers (customer_id);

-- Each customer's latest scores and open tickets, for segments, the stage rules and the
-- 360° page; kept by the writes that change them.
CREATE TABLE customer_feedback (
    customer_id       BIGINT  PRIMARY KEY,
    nps_score         BIGINT,
    nps_group         TEXT    CHECK (nps_group IN ('promoter','passive','detractor')),
    nps_at            BIGINT,
    csat_score        BIGINT,
    csat_at           BIGINT,
    open_tickets      BIGINT  NOT NULL DEFAULT 0 CHECK (open_tickets >= 0),
    last_category     TEXT    CHECK (last_category IN ('product_quality','late_delivery','wrong_specification','packaging','service_attitude','billing','other')),
    last_ticket_at    BIGINT
);
CREATE INDEX customer_feedback_nps ON customer_feedback (nps_group) WHERE nps_group IS NOT NULL;

-- New kinds of job and of change-log entry: SQLite cannot change a CHECK constraint, so the
-- two tables are rebuilt with the longer lists.
CREATE TABLE jobs_new (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('model_refresh','duplicates_rebuild','recommendations_build','analytics_refresh','loyalty_expire','loyalty_tiers','sla_scan')),
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

CREATE TABLE change_log_new (
    id          INTEGER PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor_kind  TEXT    NOT NULL CHECK (actor_kind IN ('token','user','cli','system')),
    actor_id    BIGINT,
    actor_name  TEXT    NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('api','web','cli','import','job')),
    entity      TEXT    NOT NULL CHECK (entity IN ('customer','order','interaction','account','product','category','merge','user','token','predictions','recommendations','aggregates','duplicates','job','segment','settings','lifecycle','analytics','loyalty','reward','coupon','ticket','task','survey')),
    entity_id   BIGINT,
    operation   TEXT    NOT NULL CHECK (operation IN ('create','update','delete','merge','undo','import','revoke','rebuild')),
    customer_id BIGINT,
    detail      TEXT
);
INSERT INTO change_log_new SELECT id, at, actor_kind, actor_id, actor_name, source, entity,
    entity_id, operation, customer_id, detail FROM change_log;
DROP TABLE change_log;
ALTER TABLE change_log_new RENAME TO change_log;
CREATE INDEX change_log_customer ON change_log (customer_id, id) WHERE customer_id IS NOT NULL;
CREATE INDEX change_log_at ON change_log (at, id);
