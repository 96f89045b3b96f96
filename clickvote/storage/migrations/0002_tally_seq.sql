-- A per-item counter of accepted votes, bumped in each vote's transaction: broadcasts carry
-- it, so an instance can drop one that arrives after a newer one for the same item.
ALTER TABLE tallies ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
