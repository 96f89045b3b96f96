-- Webhooks (clickvote/webhooks.py): per environment a URL and a secret; a durable outbox of
-- events written in the vote's own transaction; a bounded log of delivery attempts.

CREATE TABLE webhooks (
    env_id TEXT PRIMARY KEY REFERENCES envs (id),
    url TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per event still to deliver (its id is the vote's event id: the receiver's
-- idempotency id). `attempts` counts claims; a claimed row is leased until `lease_until`.
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL,
    type TEXT NOT NULL,
    group_id TEXT,
    vote_to TEXT,
    value BIGINT NOT NULL DEFAULT 0,
    previous BIGINT NOT NULL DEFAULT 0,
    voters BIGINT NOT NULL DEFAULT 0,
    total BIGINT NOT NULL DEFAULT 0,
    bit_counts TEXT,
    created_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at);
CREATE INDEX webhook_outbox_env ON webhook_outbox (env_id);

-- Every delivery attempt: its HTTP status (NULL when none came) or error; the newest few
-- per environment are kept.
CREATE TABLE webhook_log (
    id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    delivered INTEGER NOT NULL,
    at BIGINT NOT NULL,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_log_env ON webhook_log (env_id, id);
