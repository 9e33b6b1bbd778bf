-- Customer lists and segments filter on predicted value and on P(alive).
CREATE INDEX customer_predictions_clv ON customer_predictions (clv);
CREATE INDEX customer_predictions_p_alive ON customer_predictions (p_alive);
