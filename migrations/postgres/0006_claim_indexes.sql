-- Delivery throughput (issue 13). A claim reads the account's pending rows in id order and its
-- expired leases from two partial indexes, so it never walks the finished rows in front of
-- them (the (account, state, id) index let the planner scan the primary key from the first
-- row ever stored). Partial indexes take an entry only from row versions they cover: a
-- finished row is in neither, and an unfinished row is not in the finished-time index.
CREATE INDEX IF NOT EXISTS webhooks_pending ON webhooks (account, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhooks_leased ON webhooks (account, leased_until) WHERE state = 'leased';
DROP INDEX IF EXISTS webhooks_claim;
CREATE INDEX IF NOT EXISTS webhooks_finished_at ON webhooks (finished_at, state) WHERE finished_at IS NOT NULL;
DROP INDEX IF EXISTS webhooks_finished;
-- On a large existing table the builds hold writes for a while: upgrade in a quiet moment.
