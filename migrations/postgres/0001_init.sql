-- freshtap queue schema (PostgreSQL). Applied at start under an advisory lock, in the first
-- schema of the connection's search_path; every statement is idempotent.
-- Times are milliseconds since the Unix epoch (BIGINT), as in the SQLite schema.
CREATE TABLE IF NOT EXISTS webhooks (
    id           BIGSERIAL PRIMARY KEY,
    route        TEXT    NOT NULL,
    account      TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    body         BYTEA   NOT NULL,
    body_hash    BYTEA   NOT NULL,
    request_id   TEXT    NOT NULL,
    received_at  BIGINT  NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'leased', 'delivered', 'dead')),
    due_at       BIGINT  NOT NULL,          -- a pending row is claimed from then on
    leased_until BIGINT,                    -- an expired lease makes the row claimable again
    attempts     INTEGER NOT NULL DEFAULT 0,
    deadline_at  BIGINT  NOT NULL,          -- past it the row's records go dead (max_age)
    order_keys   TEXT[]  NOT NULL DEFAULT '{}',
    delivered    INTEGER[] NOT NULL DEFAULT '{}', -- record indexes delivered
    last_error   TEXT,
    finished_at  BIGINT
);
CREATE INDEX IF NOT EXISTS webhooks_claim ON webhooks (account, state, id);
CREATE INDEX IF NOT EXISTS webhooks_request ON webhooks (request_id);
CREATE INDEX IF NOT EXISTS webhooks_state ON webhooks (state, id);

-- Dedup across replicas: the primary key makes two concurrent inserts of one (route, body hash)
-- wait for each other; the row remembers the last accepted copy, so the window slides.
CREATE TABLE IF NOT EXISTS dedup (
    route       TEXT   NOT NULL,
    body_hash   BYTEA  NOT NULL,
    row_id      BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (route, body_hash)
);
CREATE INDEX IF NOT EXISTS dedup_received_at ON dedup (received_at);

-- Order keys of unfinished rows only: a claim skips a row while another row holds one of its keys.
CREATE TABLE IF NOT EXISTS active_keys (
    row_id BIGINT NOT NULL,
    key    TEXT   NOT NULL,
    PRIMARY KEY (row_id, key)
);
CREATE INDEX IF NOT EXISTS active_keys_key ON active_keys (key, row_id);

CREATE TABLE IF NOT EXISTS dead_letters (
    id           BIGSERIAL PRIMARY KEY,
    row_id       BIGINT  NOT NULL,
    record_index INTEGER,                   -- NULL: the whole row (invalid_body)
    code         TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    dead_at      BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_row ON dead_letters (row_id);
CREATE INDEX IF NOT EXISTS dead_letters_dead_at ON dead_letters (dead_at);

-- CleverTap request slots held per account by every replica (max_in_flight is an account total).
CREATE TABLE IF NOT EXISTS delivery_slots (
    id         BIGSERIAL PRIMARY KEY,
    account    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL              -- database clock; a dead replica's slots lapse
);
CREATE INDEX IF NOT EXISTS delivery_slots_account ON delivery_slots (account, expires_at);
