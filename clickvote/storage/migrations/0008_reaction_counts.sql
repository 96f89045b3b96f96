-- Per reaction of an item (a reactions group), the voters holding it: bumped in each vote's
-- transaction by the bits it changed, so a vote reads and writes one row per reaction, never
-- the item's votes. bit_no is the reaction id's bit in a voter's value (clickvote/reactions.py).
-- The counts of the votes already stored are computed here (bit b of value without `%`, a
-- placeholder mark to the PostgreSQL driver).
CREATE TABLE reaction_counts (
    group_id TEXT NOT NULL REFERENCES vote_groups (id),
    vote_to TEXT NOT NULL,
    bit_no INTEGER NOT NULL,
    voters BIGINT NOT NULL,
    PRIMARY KEY (group_id, vote_to, bit_no)
);

WITH RECURSIVE slots (bit_no, weight) AS (
    SELECT 0, 1 UNION ALL SELECT bit_no + 1, weight * 2 FROM slots WHERE bit_no < 30
)
INSERT INTO reaction_counts (group_id, vote_to, bit_no, voters)
SELECT v.group_id, v.vote_to, s.bit_no, COUNT(*) FROM votes v
JOIN vote_groups g ON g.id = v.group_id AND g.type = 'reactions'
JOIN slots s ON v.value / s.weight - v.value / s.weight / 2 * 2 = 1
GROUP BY v.group_id, v.vote_to, s.bit_no;
