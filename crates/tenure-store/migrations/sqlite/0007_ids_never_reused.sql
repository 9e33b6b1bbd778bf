-- SQLite gives a new row the highest id plus one, so deleting the newest customer, order or
-- interaction would hand its id to the next one: merge records, aliases and ids held by
-- clients would then name someone else. Each delete records the highest id deleted per table
-- here, and every insert names its id above both that and the table's highest
-- (`dialect.rs`), so ids are never reused. (AUTOINCREMENT would do the same at the cost of a
-- sqlite_sequence update on every insert statement: a fifth slower for the import's
-- one-row statements. PostgreSQL's identity sequences never reuse an id.)
CREATE TABLE id_floors (
    name TEXT   PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TRIGGER customers_id_floor AFTER DELETE ON customers BEGIN
    INSERT OR REPLACE INTO id_floors (name, last)
    VALUES ('customers', MAX(OLD.id, COALESCE((SELECT last FROM id_floors WHERE name = 'customers'), 0)));
END;

CREATE TRIGGER orders_id_floor AFTER DELETE ON orders BEGIN
    INSERT OR REPLACE INTO id_floors (name, last)
    VALUES ('orders', MAX(OLD.id, COALESCE((SELECT last FROM id_floors WHERE name = 'orders'), 0)));
END;

CREATE TRIGGER interactions_id_floor AFTER DELETE ON interactions BEGIN
    INSERT OR REPLACE INTO id_floors (name, last)
    VALUES ('interactions', MAX(OLD.id, COALESCE((SELECT last FROM id_floors WHERE name = 'interactions'), 0)));
END;
