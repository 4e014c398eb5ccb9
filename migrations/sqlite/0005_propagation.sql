-- Erasures that propagate to CleverTap (issue 15): the profile deletions each one queued, as
-- comma-separated `account:row_id` (rows of the `_delete:<account>` routes).
ALTER TABLE erasures ADD COLUMN deletions TEXT NOT NULL DEFAULT '';
