-- freshtap queue schema (SQLite). Idempotent: applied at every start.
CREATE TABLE IF NOT EXISTS webhooks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    route        TEXT    NOT NULL,
    account      TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    body_hash    BLOB    NOT NULL,
    request_id   TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,          -- ms since epoch
    state        TEXT    NOT NULL,          -- pending | leased | delivered | dead
    due_at       INTEGER NOT NULL,          -- ms; a pending row is claimed from then on
    leased_until INTEGER,                   -- ms; an expired lease makes the row claimable again
    attempts     INTEGER NOT NULL DEFAULT 0,
    deadline_at  INTEGER NOT NULL,          -- ms; past it the row's records go dead (max_age)
    order_keys   TEXT    NOT NULL DEFAULT '', -- newline-separated identities
    delivered    TEXT    NOT NULL DEFAULT '', -- comma-separated record indexes delivered
    last_error   TEXT,
    finished_at  INTEGER
);
CREATE INDEX IF NOT EXISTS webhooks_claim ON webhooks (account, state, id);
CREATE INDEX IF NOT EXISTS webhooks_dedup ON webhooks (route, body_hash, received_at);
CREATE INDEX IF NOT EXISTS webhooks_request ON webhooks (request_id);
CREATE INDEX IF NOT EXISTS webhooks_state ON webhooks (state, id);

-- Order keys of unfinished rows only: a claim skips a row while an earlier row holds one of its keys.
CREATE TABLE IF NOT EXISTS active_keys (
    row_id INTEGER NOT NULL,
    key    TEXT    NOT NULL,
    PRIMARY KEY (row_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS active_keys_key ON active_keys (key, row_id);

CREATE TABLE IF NOT EXISTS dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    row_id       INTEGER NOT NULL,
    record_index INTEGER,                   -- NULL: the whole row (invalid_body)
    code         TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    dead_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_row ON dead_letters (row_id);
CREATE INDEX IF NOT EXISTS dead_letters_dead_at ON dead_letters (dead_at);
