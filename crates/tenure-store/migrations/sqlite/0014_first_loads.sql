-- A first load into (nearly) empty tables under way: the secondary indexes it dropped, to be
-- built again once its rows are in (`definition`), and a row per loaded table (`definition`
-- NULL). While any row is here, imports defer the customers' aggregates to one set-based
-- rebuild at the end; an import run again after an interruption finishes the job.
CREATE TABLE first_loads (
    name        TEXT    PRIMARY KEY,
    table_name  TEXT    NOT NULL,
    definition  TEXT,
    started_at  BIGINT  NOT NULL
);

-- A first load's search terms, in the order they came; moved into `customer_search_terms`
-- sorted, once, at its end (inserting them one by one lands each in a random place of the
-- term index).
CREATE TABLE first_load_terms (
    term         TEXT    NOT NULL,
    customer_id  BIGINT  NOT NULL
);
