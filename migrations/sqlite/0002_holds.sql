-- Account holds (operator pauses, CleverTap refusals, outages), shared by everything that opens
-- the queue and kept across restarts. Several kinds may hold one account at once.
CREATE TABLE IF NOT EXISTS account_holds (
    account      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,          -- manual | refused | unreachable
    reason       TEXT    NOT NULL,
    since        INTEGER NOT NULL,          -- ms; when this hold began
    period_since INTEGER NOT NULL,          -- ms; when the account's unbroken held period began
    probe_at     INTEGER,                   -- ms; the next probe may go from then (NULL: manual)
    probes       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, kind)
) WITHOUT ROWID;

-- One row rewritten by each readiness check: a real commit, so a queue that cannot write is
-- noticed (and a fault clears) even when no webhook arrives.
CREATE TABLE IF NOT EXISTS heartbeat (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL
);
