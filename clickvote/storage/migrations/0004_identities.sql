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
--   any other id, anywhere else (anyone could send that id)     -> "u:<id>"
-- Each old key maps to exactly one new key, and different old keys to different new keys, so
-- every vote keeps exactly one row and every tally stays as it was: nobody counts twice.
-- (The votes table is rebuilt rather than updated in place, so no intermediate state can
-- trip its primary key.)

ALTER TABLE envs ADD COLUMN identities TEXT NOT NULL DEFAULT 'signed,token,unsigned';
UPDATE envs SET identities = 'signed' WHERE require_signed <> 0;

CREATE TABLE votes_rekeyed (
    group_id TEXT NOT NULL REFERENCES vote_groups (id),
    vote_to TEXT NOT NULL,
    voter TEXT NOT NULL,
    value INTEGER NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, vote_to, voter)
);
INSERT INTO votes_rekeyed (group_id, vote_to, voter, value, updated_at)
SELECT v.group_id, v.vote_to,
       CASE WHEN substr(v.voter, 1, 5) = 'anon_' THEN 't:'
            WHEN COALESCE(e.require_signed, 0) <> 0 THEN 's:'
            ELSE 'u:' END || v.voter,
       v.value, v.updated_at
FROM votes v
LEFT JOIN vote_groups g ON g.id = v.group_id
LEFT JOIN envs e ON e.id = g.env_id;
DROP TABLE votes;
ALTER TABLE votes_rekeyed RENAME TO votes;

UPDATE events SET voter = CASE
    WHEN substr(voter, 1, 5) = 'anon_' THEN 't:'
    WHEN EXISTS (SELECT 1 FROM envs e WHERE e.id = events.env_id AND e.require_signed <> 0)
        THEN 's:'
    ELSE 'u:' END || voter;

UPDATE idempotency SET voter = CASE
    WHEN substr(voter, 1, 5) = 'anon_' THEN 't:'
    WHEN EXISTS (SELECT 1 FROM envs e WHERE e.id = idempotency.env_id AND e.require_signed <> 0)
        THEN 's:'
    ELSE 'u:' END || voter;

ALTER TABLE envs DROP COLUMN require_signed;
