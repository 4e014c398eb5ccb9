-- Bodies in a table of their own (issue 13). A claim and a completion each rewrite a webhooks
-- row, and SQLite rewrites the whole row every time: with its ~600-byte body in it a row was
-- ~1.3 KB, 1–2 a page, so settling 500 rows dirtied ~330 pages; without it ~13 fit a page.
-- Every webhooks row has its bodies row (an empty body once retention has dropped it); it goes
-- with its row (ON DELETE CASCADE, foreign keys are on for every connection).
CREATE TABLE IF NOT EXISTS bodies (
    row_id INTEGER PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    body   BLOB    NOT NULL
);
INSERT OR IGNORE INTO bodies (row_id, body) SELECT id, body FROM webhooks;
ALTER TABLE webhooks DROP COLUMN body;
