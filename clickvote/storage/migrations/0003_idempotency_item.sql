-- A client message id is remembered per item: the same msgId sent for another item is a new
-- vote, not a retry. (Records from before carry '' for both and match no vote; they expire.)
CREATE TABLE idempotency_new (
    env_id TEXT NOT NULL,
    voter TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    group_id TEXT NOT NULL DEFAULT '',
    vote_to TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (env_id, voter, group_id, vote_to, msg_id)
);
INSERT INTO idempotency_new (env_id, voter, msg_id, response, created_at)
SELECT env_id, voter, msg_id, response, created_at FROM idempotency;
DROP TABLE idempotency;
ALTER TABLE idempotency_new RENAME TO idempotency;
CREATE INDEX idempotency_time ON idempotency (created_at);
