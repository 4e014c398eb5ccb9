-- The console's activity view counts the last hour's received and finished rows: these indexes
-- let it read that hour instead of the whole table (and let retention find old delivered rows).
-- On a large existing table the build holds writes for a while: upgrade in a quiet moment.
CREATE INDEX IF NOT EXISTS webhooks_received ON webhooks (received_at);
CREATE INDEX IF NOT EXISTS webhooks_finished ON webhooks (finished_at, state);
