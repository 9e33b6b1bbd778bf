-- Model fits and the per-customer predictions made from them (tenure analytics clv).
CREATE TABLE model_fits (
    id              INTEGER PRIMARY KEY,
    model           TEXT    NOT NULL,
    params          TEXT    NOT NULL,
    log_likelihood  REAL NOT NULL,
    customers       BIGINT  NOT NULL,
    calibration_end TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);

-- One row per customer, replaced by each run: derived, so no foreign key (see 0001).
CREATE TABLE customer_predictions (
    customer_id        BIGINT  PRIMARY KEY,
    p_alive            REAL NOT NULL,
    expected_purchases REAL NOT NULL,
    expected_value     REAL NOT NULL,
    clv                REAL NOT NULL,
    horizon_days       BIGINT  NOT NULL,
    computed_at        BIGINT  NOT NULL
);
