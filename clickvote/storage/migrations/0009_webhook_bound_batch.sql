-- Webhooks: each environment's bound on its events waiting for delivery (NULL: the
-- installation's webhook_max_pending); past it the oldest are discarded, and the delivery
-- log's entry for that pass says how many (`dropped`, 0 on a delivery attempt).

ALTER TABLE webhooks ADD COLUMN max_pending BIGINT;
ALTER TABLE webhook_log ADD COLUMN dropped BIGINT NOT NULL DEFAULT 0;

-- Events per POST at most: 1, one event per POST; above 1, `{"type": "batch", "events"}`.
ALTER TABLE webhooks ADD COLUMN batch_size INTEGER NOT NULL DEFAULT 1;

-- The oldest events of an environment, found and discarded in the order of their ids.
DROP INDEX webhook_outbox_env;
CREATE INDEX webhook_outbox_env ON webhook_outbox (env_id, id);
