-- Merges of duplicate customers: who was merged into whom, the profiles before and after,
-- and which rows moved, so a merge can be undone. The merged customer's external id keeps
-- pointing at the survivor through customer_aliases while the merge stands.
CREATE TABLE customer_merges (
    id                 INTEGER PRIMARY KEY,
    survivor_id        BIGINT  NOT NULL,
    merged_id          BIGINT  NOT NULL,
    merged_external_id TEXT,
    survivor_before    TEXT    NOT NULL,
    survivor_after     TEXT    NOT NULL,
    merged_profile     TEXT    NOT NULL,
    merged_created_at  BIGINT  NOT NULL,
    moved              TEXT    NOT NULL,
    merged_by          TEXT    NOT NULL,
    merged_at          BIGINT  NOT NULL,
    undone_by          TEXT,
    undone_at          BIGINT
);
CREATE INDEX customer_merges_survivor ON customer_merges (survivor_id, id);
CREATE INDEX customer_merges_merged ON customer_merges (merged_id, id);

CREATE TABLE customer_aliases (
    external_id TEXT    PRIMARY KEY,
    customer_id BIGINT  NOT NULL,
    merge_id    BIGINT  NOT NULL
);
CREATE INDEX customer_aliases_customer ON customer_aliases (customer_id);
