-- no-transaction
-- SQLite gives a new row the highest id plus one, so deleting the newest customer, order or
-- interaction would hand its id to the next one: merge records, aliases and ids held by
-- clients would then name someone else. AUTOINCREMENT keeps the highest id ever used
-- (sqlite_sequence), so ids are never reused. Adding it means rebuilding the tables; the
-- references of other tables name the tables, not their storage, and stay valid. Foreign
-- keys are off while the old tables are dropped, so nothing cascades.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE customers_next (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id         TEXT    UNIQUE,
    kind                TEXT    NOT NULL CHECK (kind IN ('person','organisation')),
    name                TEXT    NOT NULL,
    email               TEXT,
    phone               TEXT,
    birthday            TEXT,
    locale              TEXT,
    region              TEXT,
    acquisition_source  TEXT,
    acquisition_channel TEXT,
    account_id          BIGINT  REFERENCES accounts(id) ON DELETE SET NULL,
    owner_id            BIGINT  REFERENCES staff_users(id) ON DELETE SET NULL,
    tags                TEXT    NOT NULL DEFAULT '[]',
    contact_points      TEXT    NOT NULL DEFAULT '[]',
    preferences         TEXT    NOT NULL DEFAULT '{}',
    custom_fields       TEXT    NOT NULL DEFAULT '{}',
    consents            TEXT    NOT NULL DEFAULT '[]',
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    version             BIGINT  NOT NULL DEFAULT 1
);
INSERT INTO customers_next SELECT id, external_id, kind, name, email, phone, birthday, locale, region,
    acquisition_source, acquisition_channel, account_id, owner_id, tags, contact_points, preferences,
    custom_fields, consents, created_at, updated_at, version FROM customers;
DROP TABLE customers;
ALTER TABLE customers_next RENAME TO customers;
CREATE INDEX customers_account ON customers (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX customers_owner ON customers (owner_id) WHERE owner_id IS NOT NULL;

CREATE TABLE orders_next (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id   TEXT    UNIQUE,
    customer_id   BIGINT  NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    occurred_at   BIGINT  NOT NULL,
    purchase_day  BIGINT  NOT NULL,
    currency      TEXT    NOT NULL,
    total_minor   BIGINT  NOT NULL,
    channel       TEXT    NOT NULL CHECK (channel IN ('store','online','phone','app','marketplace','distributor','other')),
    status        TEXT    NOT NULL CHECK (status IN ('completed','cancelled','refunded')),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
INSERT INTO orders_next SELECT id, external_id, customer_id, occurred_at, purchase_day, currency, total_minor,
    channel, status, created_at, updated_at FROM orders;
DROP TABLE orders;
ALTER TABLE orders_next RENAME TO orders;
CREATE INDEX orders_customer_time ON orders (customer_id, occurred_at, id);

CREATE TABLE interactions_next (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id   TEXT    UNIQUE,
    customer_id   BIGINT  NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    channel       TEXT    NOT NULL CHECK (channel IN ('phone','email','sms','chat','social','in_person','app','web')),
    direction     TEXT    NOT NULL CHECK (direction IN ('inbound','outbound')),
    kind          TEXT    NOT NULL CHECK (kind IN ('call','message','meeting','visit','note','inquiry','complaint','feedback','other')),
    subject       TEXT    NOT NULL DEFAULT '',
    body          TEXT    NOT NULL DEFAULT '',
    staff_user_id BIGINT  REFERENCES staff_users(id) ON DELETE SET NULL,
    buying_signal BIGINT  NOT NULL DEFAULT 0 CHECK (buying_signal IN (0, 1)),
    occurred_at   BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL
);
INSERT INTO interactions_next SELECT id, external_id, customer_id, channel, direction, kind, subject, body,
    staff_user_id, buying_signal, occurred_at, created_at FROM interactions;
DROP TABLE interactions;
ALTER TABLE interactions_next RENAME TO interactions;
CREATE INDEX interactions_customer_time ON interactions (customer_id, occurred_at, id);

COMMIT;
PRAGMA foreign_keys = ON;
