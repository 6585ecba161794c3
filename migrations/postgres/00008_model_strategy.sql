-- Balancing policies per model (issue 7).
-- models.strategy: how the balancer orders the model's available
-- deployments (auto, weighted, least_busy, latency, cost, priority); ''
-- is auto, so existing rows keep the default. models.strategy_options:
-- the auto strategy's tuning as a JSON object (latency_tolerance,
-- error_weight); '{}' takes the defaults. Columns of their own rather than
-- members of the limits JSON: limits are quotas the quota store enforces,
-- these are routing, read by another package, validated and shown apart.
-- A deployment's priority tier lives in the deployments JSON, beside its
-- weight.

-- +goose Up
ALTER TABLE models ADD COLUMN strategy TEXT NOT NULL DEFAULT '';
ALTER TABLE models ADD COLUMN strategy_options TEXT NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE models DROP COLUMN strategy_options;
ALTER TABLE models DROP COLUMN strategy;
