-- The life cycle, RFM, segments and the retention reports.

-- A business's settings, one JSON document per name (`lifecycle`, ...), typed and
-- validated by the application.
CREATE TABLE settings (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- Where each customer stands. stage is what counts (the manual stage when one is set, else
-- computed_stage, which the rule gives); stage_since is when the customer entered it.
-- money, authority and need qualify a prospect; contact attempts are outbound contacts,
-- those since the last progress (a buying signal, a change of qualification) park the
-- prospect at the business's cap. loss_reason is the current churn episode's.
CREATE TABLE customer_lifecycle (
    customer_id             BIGINT  PRIMARY KEY,
    stage                   TEXT    NOT NULL CHECK (stage IN ('potential','prospect','new','active','loyal','at_risk','churned','won_back')),
    computed_stage          TEXT    NOT NULL CHECK (computed_stage IN ('potential','prospect','new','active','loyal','at_risk','churned','won_back')),
    stage_since             BIGINT  NOT NULL,
    override_stage          TEXT    CHECK (override_stage IN ('potential','prospect','new','active','loyal','at_risk','churned','won_back')),
    override_note           TEXT,
    loss_reason             TEXT    CHECK (loss_reason IN ('price','poor_service','product_quality','slow_response','competitor','moved','other','unknown')),
    loss_reason_source      TEXT    CHECK (loss_reason_source IN ('staff','inferred')),
    money                   BIGINT  NOT NULL DEFAULT 0 CHECK (money IN (0, 1)),
    authority               BIGINT  NOT NULL DEFAULT 0 CHECK (authority IN (0, 1)),
    need                    BIGINT  NOT NULL DEFAULT 0 CHECK (need IN (0, 1)),
    qualified_at            BIGINT,
    contact_attempts        BIGINT  NOT NULL DEFAULT 0,
    attempts_since_progress BIGINT  NOT NULL DEFAULT 0,
    buying_signals          BIGINT  NOT NULL DEFAULT 0,
    parked                  BIGINT  NOT NULL DEFAULT 0 CHECK (parked IN (0, 1)),
    updated_at              BIGINT  NOT NULL
);
CREATE INDEX customer_lifecycle_stage ON customer_lifecycle (stage, customer_id);

-- Every move between stages, with its time, reason and who or what made it.
CREATE TABLE stage_transitions (
    id          INTEGER PRIMARY KEY,
    customer_id BIGINT  NOT NULL,
    at          BIGINT  NOT NULL,
    from_stage  TEXT    CHECK (from_stage IN ('potential','prospect','new','active','loyal','at_risk','churned','won_back')),
    to_stage    TEXT    NOT NULL CHECK (to_stage IN ('potential','prospect','new','active','loyal','at_risk','churned','won_back')),
    reason      TEXT    NOT NULL CHECK (reason IN ('no_purchase','qualified','first_purchase','repeat_purchase','orders','recency','rhythm','p_alive','lapsed','returned','override','override_cleared','history_changed')),
    detail      TEXT    NOT NULL DEFAULT '',
    loss_reason TEXT    CHECK (loss_reason IN ('price','poor_service','product_quality','slow_response','competitor','moved','other','unknown')),
    actor_name  TEXT    NOT NULL
);
CREATE INDEX stage_transitions_customer ON stage_transitions (customer_id, at, id);
CREATE INDEX stage_transitions_at ON stage_transitions (at, id);

-- RFM scores of the latest refresh (the analytics_reports row `rfm` says as of when); the
-- raw values are customer_stats'. Only scores that changed are written.
CREATE TABLE customer_rfm (
    customer_id    BIGINT  PRIMARY KEY,
    r              BIGINT  NOT NULL,
    f              BIGINT  NOT NULL,
    m              BIGINT  NOT NULL,
    segment        TEXT    NOT NULL CHECK (segment IN ('champions','loyal','potential_loyalists','new','promising','need_attention','about_to_sleep','at_risk','cant_lose_them','hibernating','lost'))
);
CREATE INDEX customer_rfm_segment ON customer_rfm (segment, customer_id);

-- Segments: an expression of the filter language (tenure_domain::segment) and the names
-- of the segments it is built on.
CREATE TABLE segments (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    description  TEXT    NOT NULL DEFAULT '',
    expression   TEXT    NOT NULL,
    depends_on   TEXT    NOT NULL DEFAULT '[]',
    members      BIGINT  NOT NULL DEFAULT 0,
    refreshed_at BIGINT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    version      BIGINT  NOT NULL DEFAULT 1
);

-- Who is in each segment now, and since when.
CREATE TABLE segment_members (
    segment_id  BIGINT  NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    customer_id BIGINT  NOT NULL,
    since       BIGINT  NOT NULL,
    PRIMARY KEY (segment_id, customer_id)
) WITHOUT ROWID;
CREATE INDEX segment_members_customer ON segment_members (customer_id, segment_id);

-- Who entered and left each segment, when.
CREATE TABLE segment_history (
    id          INTEGER PRIMARY KEY,
    segment_id  BIGINT  NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    customer_id BIGINT  NOT NULL,
    at          BIGINT  NOT NULL,
    change      TEXT    NOT NULL CHECK (change IN ('entered','left'))
);
CREATE INDEX segment_history_segment ON segment_history (segment_id, at, id);
CREATE INDEX segment_history_customer ON segment_history (customer_id, at);

-- The reports of the latest analytics refresh (cohorts, retention, RFM grid, concentration),
-- one JSON document each, so pages show them without scanning the purchases.
CREATE TABLE analytics_reports (
    name         TEXT    PRIMARY KEY,
    as_of        TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    computed_at  BIGINT  NOT NULL
);

-- New kinds of job and of change-log entry: SQLite cannot change a CHECK constraint, so the
-- two tables are rebuilt with the longer lists.
CREATE TABLE jobs_new (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('model_refresh','duplicates_rebuild','recommendations_build','analytics_refresh')),
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
    entity      TEXT    NOT NULL CHECK (entity IN ('customer','order','interaction','account','product','category','merge','user','token','predictions','recommendations','aggregates','duplicates','job','segment','settings','lifecycle','analytics')),
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
