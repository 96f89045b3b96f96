-- Abuse control (clickvote/abuse.py): each environment's settings of the layers after the
-- voter token, as JSON ({} = the defaults of storage.base.AbuseSettings), and the votes each
-- layer refused, per environment per day (day: ms since the epoch of its 00:00 UTC; layer:
-- token, ipWindow, rateLimit, proofOfWork). Counts are added in batches, never per vote.
ALTER TABLE envs ADD COLUMN abuse TEXT NOT NULL DEFAULT '{}';

CREATE TABLE refusals (
    env_id TEXT NOT NULL REFERENCES envs (id),
    day BIGINT NOT NULL,
    layer TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (env_id, day, layer)
);
