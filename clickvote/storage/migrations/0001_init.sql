-- ClickVote schema, version 1.
-- Portable SQL: runs unchanged on SQLite (>= 3.35) and PostgreSQL (>= 12).
-- Ids are text (random hex); times are BIGINT milliseconds since the epoch (UTC).

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    user_id TEXT NOT NULL REFERENCES users (id),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    role TEXT NOT NULL DEFAULT 'owner',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, org_id)
);

CREATE TABLE envs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    public_key TEXT NOT NULL UNIQUE,
    secret_key_sealed TEXT NOT NULL,
    require_signed INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX envs_org ON envs (org_id, position);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE vote_groups (
    id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL REFERENCES envs (id),
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    range_start INTEGER,
    range_end INTEGER,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
-- names are unique among the live (non-deleted) groups of an environment
CREATE UNIQUE INDEX vote_groups_live_name ON vote_groups (env_id, name) WHERE deleted_at IS NULL;
CREATE INDEX vote_groups_env ON vote_groups (env_id, created_at);

-- one current value per (group, voteTo, voter); a value of 0 is stored as "no row"
CREATE TABLE votes (
    group_id TEXT NOT NULL REFERENCES vote_groups (id),
    vote_to TEXT NOT NULL,
    voter TEXT NOT NULL,
    value INTEGER NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, vote_to, voter)
);

-- running totals per item: voters = rows with value <> 0, total = sum of values
CREATE TABLE tallies (
    group_id TEXT NOT NULL REFERENCES vote_groups (id),
    vote_to TEXT NOT NULL,
    voters BIGINT NOT NULL,
    total BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, vote_to)
);

-- every accepted vote (including un-votes and changes), for analytics
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    vote_to TEXT NOT NULL,
    voter TEXT NOT NULL,
    value INTEGER NOT NULL,
    previous INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    user_agent TEXT,
    referrer TEXT
);
CREATE INDEX events_group_time ON events (group_id, created_at);
CREATE INDEX events_env_time ON events (env_id, created_at);

-- client message ids: a retried msgId returns the stored response and counts nothing
CREATE TABLE idempotency (
    env_id TEXT NOT NULL,
    voter TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (env_id, voter, msg_id)
);
CREATE INDEX idempotency_time ON idempotency (created_at);
