-- `reactions` groups: their definition as JSON (clickvote/reactions.py): the reaction ids in
-- the owner's order with their labels, maxPerVoter, and each id's bit in a voter's value.
-- NULL for the other group types.
ALTER TABLE vote_groups ADD COLUMN reactions TEXT;
