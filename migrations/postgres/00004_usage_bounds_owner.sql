-- Usage bounds and key owners.
-- 1. Rows stored before usage was sanitised may hold impossible figures
--    (negative, or beyond llm.MaxTokensPerRequest = 10,000,000 tokens, or a
--    cost beyond llm.MaxCostMicrosPerRecord = 2e13 micro-USD): clamp them as
--    llm.Usage.Sanitize would and mark them clamped. Their cost is capped,
--    not recomputed (the prices of the time are not known).
-- 2. Keys get an optional owner (a team or user) recorded on usage rows.

-- +goose Up
UPDATE usage_records SET
    clamped = TRUE,
    prompt_tokens = LEAST(GREATEST(prompt_tokens, 0), 10000000),
    completion_tokens = LEAST(GREATEST(completion_tokens, 0), 10000000),
    cached_tokens = GREATEST(cached_tokens, 0),
    cache_write_tokens = GREATEST(cache_write_tokens, 0),
    reasoning_tokens = GREATEST(reasoning_tokens, 0),
    cost_micros = LEAST(GREATEST(cost_micros, 0), 20000000000000)
WHERE prompt_tokens NOT BETWEEN 0 AND 10000000
   OR completion_tokens NOT BETWEEN 0 AND 10000000
   OR cached_tokens < 0 OR cache_write_tokens < 0 OR reasoning_tokens < 0
   OR cost_micros NOT BETWEEN 0 AND 20000000000000;
UPDATE usage_records SET
    clamped = TRUE,
    cached_tokens = LEAST(cached_tokens, prompt_tokens),
    cache_write_tokens = LEAST(cache_write_tokens, prompt_tokens - LEAST(cached_tokens, prompt_tokens)),
    reasoning_tokens = LEAST(reasoning_tokens, completion_tokens)
WHERE cached_tokens > prompt_tokens
   OR cache_write_tokens > prompt_tokens - cached_tokens
   OR reasoning_tokens > completion_tokens;
ALTER TABLE api_keys ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX usage_records_owner_ts ON usage_records (owner, ts);

-- +goose Down
DROP INDEX usage_records_owner_ts;
ALTER TABLE api_keys DROP COLUMN owner;
