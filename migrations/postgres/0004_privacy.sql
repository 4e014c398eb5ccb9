-- Privacy (issue 15): erasures on request, the audit log of admin actions, and the delivered
-- rows whose body retention has dropped (`body_dropped_at`; the body is then empty).
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS body_dropped_at BIGINT;  -- ms; NULL while the body is kept

-- One row per erasure: who asked and what was removed; the identity only as a keyed hash.
CREATE TABLE IF NOT EXISTS erasures (
    id            BIGSERIAL PRIMARY KEY,
    at            BIGINT  NOT NULL,         -- ms
    credential    TEXT    NOT NULL,         -- the credential's name, never its value
    client        TEXT    NOT NULL,         -- client address
    request_id    TEXT    NOT NULL,
    identity_hash TEXT    NOT NULL,         -- hex HMAC-SHA256 of the lowercased identity
    keep_pending  BOOLEAN NOT NULL,
    propagate     BOOLEAN NOT NULL,
    pending       BIGINT  NOT NULL,         -- rows removed, by the state they were in
    leased        BIGINT  NOT NULL,
    delivered     BIGINT  NOT NULL,
    dead          BIGINT  NOT NULL,
    dead_letters  BIGINT  NOT NULL,
    scanned       BIGINT  NOT NULL          -- bodies without extracted identity read for it
);
CREATE INDEX IF NOT EXISTS erasures_identity ON erasures (identity_hash);

-- Admin actions (replay, delete, body edit, pause/resume, erasure), newest last.
CREATE TABLE IF NOT EXISTS audit_log (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT  NOT NULL,            -- ms
    credential TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL,            -- what it acted on (dead letter id, account, erasure id)
    detail     TEXT    NOT NULL             -- counts and outcome; never a body or an identity
);
