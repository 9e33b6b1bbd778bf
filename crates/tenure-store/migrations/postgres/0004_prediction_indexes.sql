-- Customer lists and segments filter on predicted value and on P(alive).
CREATE INDEX customer_predictions_clv ON customer_predictions (clv);
CREATE INDEX customer_predictions_p_alive ON customer_predictions (p_alive);

-- The ranked at-risk list: churn risk times CLV, highest first.
ALTER TABLE customer_predictions ADD COLUMN value_at_risk DOUBLE PRECISION NOT NULL DEFAULT 0;
CREATE INDEX customer_predictions_at_risk ON customer_predictions (value_at_risk, customer_id);
