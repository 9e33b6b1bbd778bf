-- Products bought by the same customers (tenure analytics recommendations): each product's
-- most similar partners and each product's number of buyers. Derived and replaced by each
-- run, so no foreign keys (see 0001).
CREATE TABLE product_associations (
    product_id BIGINT NOT NULL,
    other_id   BIGINT NOT NULL,
    customers  BIGINT NOT NULL,
    score      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (product_id, other_id)
);

CREATE TABLE product_buyers (
    product_id BIGINT PRIMARY KEY,
    customers  BIGINT NOT NULL
);
CREATE INDEX product_buyers_rank ON product_buyers (customers, product_id);
