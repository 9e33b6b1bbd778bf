-- The customer record: staff, accounts, customers, catalogue, orders, interactions,
-- per-customer aggregates and the search index. Times are microseconds since the Unix
-- epoch (UTC); money is integer minor units with its currency.

CREATE TABLE staff_users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL CHECK (role IN ('admin','manager','agent','analyst','read_only')),
    password_hash TEXT,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('admin','manager','agent','analyst','read_only')),
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE accounts (
    id           INTEGER PRIMARY KEY,
    external_id  TEXT    UNIQUE,
    name         TEXT    NOT NULL,
    account_type TEXT    NOT NULL CHECK (account_type IN ('end_customer','distributor','reseller','partner')),
    owner_id     BIGINT  REFERENCES staff_users(id) ON DELETE SET NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

CREATE TABLE customers (
    id                  INTEGER PRIMARY KEY,
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
CREATE INDEX customers_account ON customers (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX customers_owner ON customers (owner_id) WHERE owner_id IS NOT NULL;

-- Tags as rows, for filtering; the customer row keeps the list for reading.
-- customer_tags, customer_search_terms and customer_stats are derived from customers and
-- written only with them, in the same transaction; they carry no foreign key so that bulk
-- loads do not pay a per-row check. The store deletes them with the customer.
CREATE TABLE customer_tags (
    tag         TEXT    NOT NULL,
    customer_id BIGINT  NOT NULL,
    PRIMARY KEY (tag, customer_id)
) WITHOUT ROWID;
CREATE INDEX customer_tags_customer ON customer_tags (customer_id);

-- The search index: see tenure_domain::search.
CREATE TABLE customer_search_terms (
    term        TEXT    NOT NULL,
    customer_id BIGINT  NOT NULL,
    PRIMARY KEY (term, customer_id)
) WITHOUT ROWID;
CREATE INDEX customer_search_terms_customer ON customer_search_terms (customer_id, term);

-- Consent history: every grant and withdrawal, with time and source.
CREATE TABLE consent_events (
    id          INTEGER PRIMARY KEY,
    customer_id BIGINT  NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    channel     TEXT    NOT NULL CHECK (channel IN ('email','sms','phone','im','post','app')),
    status      TEXT    NOT NULL CHECK (status IN ('granted','withdrawn')),
    source      TEXT    NOT NULL,
    at          BIGINT  NOT NULL
);
CREATE INDEX consent_events_customer ON consent_events (customer_id, at);

CREATE TABLE product_categories (
    id        INTEGER PRIMARY KEY,
    name      TEXT    NOT NULL UNIQUE,
    parent_id BIGINT  REFERENCES product_categories(id) ON DELETE SET NULL
);

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    external_id TEXT    UNIQUE,
    name        TEXT    NOT NULL,
    category_id BIGINT  REFERENCES product_categories(id) ON DELETE SET NULL,
    price_minor BIGINT,
    currency    TEXT    NOT NULL,
    active      BIGINT  NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE orders (
    id            INTEGER PRIMARY KEY,
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
CREATE INDEX orders_customer_time ON orders (customer_id, occurred_at, id);

CREATE TABLE order_lines (
    id               INTEGER PRIMARY KEY,
    order_id         BIGINT  NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    customer_id      BIGINT  NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    line_no          BIGINT  NOT NULL,
    product_id       BIGINT  REFERENCES products(id) ON DELETE SET NULL,
    description      TEXT    NOT NULL DEFAULT '',
    quantity         BIGINT  NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT  NOT NULL,
    total_minor      BIGINT  NOT NULL,
    UNIQUE (order_id, line_no)
);
CREATE INDEX order_lines_customer ON order_lines (customer_id);
CREATE INDEX order_lines_product ON order_lines (product_id) WHERE product_id IS NOT NULL;

CREATE TABLE interactions (
    id            INTEGER PRIMARY KEY,
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
CREATE INDEX interactions_customer_time ON interactions (customer_id, occurred_at, id);

-- Per-customer aggregates, kept in the same transaction as every order and interaction
-- write, and rebuildable from raw rows. Spend is in the reporting currency's minor units,
-- counting completed orders in that currency.
CREATE TABLE customer_stats (
    customer_id        BIGINT  PRIMARY KEY,
    first_purchase_at  BIGINT,
    last_purchase_at   BIGINT,
    orders_count       BIGINT  NOT NULL DEFAULT 0,
    purchase_days      BIGINT  NOT NULL DEFAULT 0,
    total_spend_minor  BIGINT  NOT NULL DEFAULT 0,
    repeat_spend_minor BIGINT  NOT NULL DEFAULT 0,
    interactions_count BIGINT  NOT NULL DEFAULT 0,
    last_contact_at    BIGINT
);
