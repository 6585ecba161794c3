-- Balancer routing beyond the pick (issue 7).
-- models.routing: fallbacks, context_window_fallbacks, retry bounds,
-- hedging and prompt-cache affinity as one JSON object ('{}' takes the
-- defaults): routing read by the router, validated by the store, never a
-- quota. providers.probe: the provider's active health check as a JSON
-- object ('{}' is off). usage_records gain how many upstream attempts a
-- request took, whether it was hedged, and the model whose deployment
-- answered when a fallback did ('' when it was the requested one).

-- +goose Up
ALTER TABLE models ADD COLUMN routing TEXT NOT NULL DEFAULT '{}';
ALTER TABLE providers ADD COLUMN probe TEXT NOT NULL DEFAULT '{}';
ALTER TABLE usage_records ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN hedged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN served_model TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE usage_records DROP COLUMN served_model;
ALTER TABLE usage_records DROP COLUMN hedged;
ALTER TABLE usage_records DROP COLUMN attempts;
ALTER TABLE providers DROP COLUMN probe;
ALTER TABLE models DROP COLUMN routing;
