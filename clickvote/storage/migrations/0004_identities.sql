-- Voter identities (clickvote/identity.py): each kind of voter id in its own namespace, and
-- per environment the kinds it accepts.
--
-- envs.identities replaces envs.require_signed. An environment that required signed ids now
-- accepts signed ids only (what "require signed" promised); every other one accepts all three
-- kinds, signed,token,unsigned (as before).
--
-- Every stored voter (votes, events, retry records) gains its kind's prefix. The rule:
--   "anon_<hex>" (the ids of server-issued voter tokens)         -> "t:anon_<hex>"
--   any other id, in an environment that required signed ids   -> "s:<id>"
--   any other id, anywhere else                                 -> "l:<id>"
-- "l:" (legacy) because such an id may have been sent signed or plain, which no row records:
-- the first signed or plain voter of that id to vote on the item takes the row over
-- (identity.Voter.legacy), so a site that signed its users doesn't see them count twice.
-- Each old key maps to exactly one new key, and different old keys to different new keys, so
-- every vote keeps exactly one row and every tally stays as it was: nobody counts twice.
-- (Votes and retry records are re-keyed in a copy without constraints and copied back, so no
-- half-done update can trip a primary key, whatever columns those tables have by then.)

ALTER TABLE envs ADD COLUMN identities TEXT NOT NULL DEFAULT 'signed,token,unsigned';
UPDATE envs SET identities = 'signed' WHERE require_signed <> 0;

CREATE TABLE votes_rekeyed AS SELECT * FROM votes;
UPDATE votes_rekeyed SET voter = CASE
    WHEN substr(voter, 1, 5) = 'anon_' THEN 't:'
    WHEN EXISTS (
        SELECT 1 FROM vote_groups g JOIN envs e ON e.id = g.env_id
        WHERE g.id = votes_rekeyed.group_id AND e.require_signed <> 0
    ) THEN 's:'
    ELSE 'l:' END || voter;
DELETE FROM votes;
INSERT INTO votes SELECT * FROM votes_rekeyed;
DROP TABLE votes_rekeyed;

CREATE TABLE idempotency_rekeyed AS SELECT * FROM idempotency;
UPDATE idempotency_rekeyed SET voter = CASE
    WHEN substr(voter, 1, 5) = 'anon_' THEN 't:'
    WHEN EXISTS (
        SELECT 1 FROM envs e WHERE e.id = idempotency_rekeyed.env_id AND e.require_signed <> 0
    ) THEN 's:'
    ELSE 'l:' END || voter;
DELETE FROM idempotency;
INSERT INTO idempotency SELECT * FROM idempotency_rekeyed;
DROP TABLE idempotency_rekeyed;

UPDATE events SET voter = CASE
    WHEN substr(voter, 1, 5) = 'anon_' THEN 't:'
    WHEN EXISTS (SELECT 1 FROM envs e WHERE e.id = events.env_id AND e.require_signed <> 0)
        THEN 's:'
    ELSE 'l:' END || voter;

ALTER TABLE envs DROP COLUMN require_signed;
