-- Account holds (operator pauses, CleverTap refusals, outages), shared by every replica and
-- kept across restarts. Several kinds may hold one account at once.
CREATE TABLE IF NOT EXISTS account_holds (
    account      TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('manual', 'refused', 'unreachable')),
    reason       TEXT    NOT NULL,
    since        BIGINT  NOT NULL,          -- when this hold began
    period_since BIGINT  NOT NULL,          -- when the account's unbroken held period began
    probe_at     BIGINT,                    -- the next probe may go from then (NULL: manual)
    probes       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, kind)
);
