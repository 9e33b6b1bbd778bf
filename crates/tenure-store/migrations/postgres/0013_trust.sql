-- The audit log. Each change-log entry now carries, for a change to one record, the fields
-- that changed with their value before and after (`fields`, a JSON object of
-- `field: [before, after]`). What a record looked like after its last change is kept in
-- audit_snapshots, so the next change is compared with it inside the same transaction.
-- Erasing a customer clears both of their personal values.
ALTER TABLE change_log ADD COLUMN fields TEXT;
ALTER TABLE change_log DROP CONSTRAINT change_log_operation_check;
ALTER TABLE change_log ADD CONSTRAINT change_log_operation_check CHECK (operation IN ('create','update','delete','merge','undo','import','revoke','rebuild','erase','export'));
CREATE INDEX change_log_actor ON change_log (actor_name, id);

CREATE TABLE audit_snapshots (
    entity      TEXT    NOT NULL,
    entity_id   BIGINT  NOT NULL,
    customer_id BIGINT,
    state       TEXT    NOT NULL,
    PRIMARY KEY (entity, entity_id)
);
CREATE INDEX audit_snapshots_customer ON audit_snapshots (customer_id) WHERE customer_id IS NOT NULL;
