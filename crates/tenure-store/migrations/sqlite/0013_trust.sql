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
    entity      TEXT    NOT NULL CHECK (entity IN ('customer','order','interaction','account','product','category','merge','user','token','predictions','recommendations','aggregates','duplicates','job','segment','settings','lifecycle','analytics','loyalty','reward','coupon','ticket','task','survey')),
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
