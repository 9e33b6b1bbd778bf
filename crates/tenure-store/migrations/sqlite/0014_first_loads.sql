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
