-- The loyalty program: members' accounts, the points ledger and its lots, tiers' history,
-- the rewards catalogue, coupon campaigns and their codes, and the idempotency keys of
-- retried requests. The program's rules are the `loyalty` document of `settings`.

-- One row per member. balance and pending are the sums of the member's ledger entries in
-- each bucket (kept here so a redemption checks and takes in one guarded statement); owed
-- is what a reversal could not take back because it was spent already, taken from the
-- next points the member earns. grace_until is set while the member sits below their tier.
CREATE TABLE loyalty_accounts (
    customer_id      BIGINT  PRIMARY KEY,
    balance          BIGINT  NOT NULL DEFAULT 0 CHECK (balance >= 0),
    pending          BIGINT  NOT NULL DEFAULT 0 CHECK (pending >= 0),
    owed             BIGINT  NOT NULL DEFAULT 0 CHECK (owed >= 0),
    tier             TEXT    NOT NULL,
    tier_since       BIGINT  NOT NULL,
    grace_until      BIGINT,
    referral_code    TEXT    NOT NULL UNIQUE,
    referred_by      BIGINT,
    enrolled_at      BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX loyalty_accounts_tier ON loyalty_accounts (tier, customer_id);
CREATE INDEX loyalty_accounts_referred_by ON loyalty_accounts (referred_by) WHERE referred_by IS NOT NULL;

-- The ledger: append-only. points is signed; bucket says which balance it moves.
-- source_key makes an effect happen once: `earn:order:ID`, `bonus:birthday:CUSTOMER:YEAR`,
-- `expire:lot:ID`, ... order_id names the order an earn or reversal is about. deferred is
-- the part of a reversal that was spent already: owed, and taken from later earnings by
-- `reverse` entries without an order.
CREATE TABLE loyalty_entries (
    id           INTEGER PRIMARY KEY,
    customer_id  BIGINT  NOT NULL,
    at           BIGINT  NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('earn','bonus','redeem','expire','adjust','reverse','release')),
    bucket       TEXT    NOT NULL CHECK (bucket IN ('available','pending')),
    points       BIGINT  NOT NULL,
    deferred     BIGINT  NOT NULL DEFAULT 0 CHECK (deferred >= 0),
    order_id     BIGINT,
    base_minor   BIGINT,
    reward_id    BIGINT,
    bonus        TEXT    CHECK (bonus IN ('welcome','birthday','referral','referred','survey_answered')),
    reason       TEXT    NOT NULL DEFAULT '',
    actor_name   TEXT    NOT NULL,
    source_key   TEXT    UNIQUE
);
CREATE INDEX loyalty_entries_customer ON loyalty_entries (customer_id, at, id);
CREATE INDEX loyalty_entries_order ON loyalty_entries (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX loyalty_entries_at ON loyalty_entries (at, kind);

-- What each earn or bonus gave and what is left of it. A redemption takes from the lots
-- closest to expiry; the expiry run takes what is left of lots whose time is up. pending
-- lots become available at available_at.
CREATE TABLE loyalty_lots (
    id            INTEGER PRIMARY KEY,
    customer_id   BIGINT  NOT NULL,
    entry_id      BIGINT  NOT NULL,
    order_id      BIGINT,
    points        BIGINT  NOT NULL CHECK (points > 0),
    remaining     BIGINT  NOT NULL CHECK (remaining >= 0),
    pending       BIGINT  NOT NULL DEFAULT 0 CHECK (pending IN (0, 1)),
    earned_at     BIGINT  NOT NULL,
    available_at  BIGINT,
    expires_at    BIGINT
);
CREATE INDEX loyalty_lots_customer ON loyalty_lots (customer_id, id);
CREATE INDEX loyalty_lots_expiring ON loyalty_lots (expires_at, id) WHERE remaining > 0 AND expires_at IS NOT NULL;
CREATE INDEX loyalty_lots_pending ON loyalty_lots (available_at, id) WHERE pending = 1;
CREATE INDEX loyalty_lots_order ON loyalty_lots (order_id) WHERE order_id IS NOT NULL;

-- Every tier change, with the value over the window that decided it.
CREATE TABLE loyalty_tier_changes (
    id           INTEGER PRIMARY KEY,
    customer_id  BIGINT  NOT NULL,
    at           BIGINT  NOT NULL,
    from_tier    TEXT,
    to_tier      TEXT    NOT NULL,
    reason       TEXT    NOT NULL CHECK (reason IN ('qualified','grace_ended','program_changed')),
    qualifying   BIGINT  NOT NULL
);
CREATE INDEX loyalty_tier_changes_customer ON loyalty_tier_changes (customer_id, at, id);
CREATE INDEX loyalty_tier_changes_at ON loyalty_tier_changes (at, id);

-- The rewards catalogue. stock NULL: unlimited.
CREATE TABLE loyalty_rewards (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    points_cost  BIGINT  NOT NULL CHECK (points_cost > 0),
    stock        BIGINT  CHECK (stock >= 0),
    valid_from   BIGINT,
    valid_until  BIGINT,
    active       BIGINT  NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

-- Coupon campaigns and their codes. max_uses is per code (1: single use; NULL: unlimited),
-- per_customer how often one customer may use the campaign. discount_value is whole percent
-- or minor units.
CREATE TABLE coupon_campaigns (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL,
    discount_kind   TEXT    NOT NULL CHECK (discount_kind IN ('percent','amount')),
    discount_value  BIGINT  NOT NULL CHECK (discount_value > 0),
    max_uses        BIGINT  CHECK (max_uses > 0),
    per_customer    BIGINT  NOT NULL DEFAULT 1 CHECK (per_customer > 0),
    valid_from      BIGINT,
    valid_until     BIGINT,
    created_at      BIGINT  NOT NULL
);

CREATE TABLE coupons (
    id           INTEGER PRIMARY KEY,
    campaign_id  BIGINT  NOT NULL REFERENCES coupon_campaigns(id),
    code         TEXT    NOT NULL UNIQUE,
    uses         BIGINT  NOT NULL DEFAULT 0 CHECK (uses >= 0),
    created_at   BIGINT  NOT NULL
);
CREATE INDEX coupons_campaign ON coupons (campaign_id, id);

CREATE TABLE coupon_uses (
    id           INTEGER PRIMARY KEY,
    coupon_id    BIGINT  NOT NULL REFERENCES coupons(id),
    campaign_id  BIGINT  NOT NULL,
    customer_id  BIGINT  NOT NULL,
    order_id     BIGINT,
    discount_minor BIGINT NOT NULL,
    at           BIGINT  NOT NULL
);
CREATE INDEX coupon_uses_customer ON coupon_uses (customer_id, campaign_id);
CREATE INDEX coupon_uses_coupon ON coupon_uses (coupon_id, id);

-- Requests that carried an Idempotency-Key: who sent it (scope), a hash of what was asked
-- and the answer given, so a retry gets the same answer and changes nothing.
CREATE TABLE idempotency_keys (
    scope         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    response      TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- New kinds of job and of change-log entry: SQLite cannot change a CHECK constraint, so the
-- two tables are rebuilt with the longer lists.
CREATE TABLE jobs_new (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('model_refresh','duplicates_rebuild','recommendations_build','analytics_refresh','loyalty_expire','loyalty_tiers')),
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
    entity      TEXT    NOT NULL CHECK (entity IN ('customer','order','interaction','account','product','category','merge','user','token','predictions','recommendations','aggregates','duplicates','job','segment','settings','lifecycle','analytics','loyalty','reward','coupon')),
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
