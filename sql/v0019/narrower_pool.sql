-- recdb 0019: the pool rerank() scores holds the 2 x k nearest items (was 3 x k); a
-- database still at the old default follows, one that chose its own factor keeps it.
ALTER TABLE recdb.settings ALTER COLUMN candidate_factor SET DEFAULT 2;
UPDATE recdb.settings SET candidate_factor = 2 WHERE candidate_factor = 3;
-- covisit_votes() takes the items to leave out (rerank(): the seen ones); the revision's
-- functions create it with its third argument.
DROP FUNCTION recdb.covisit_votes(bigint, integer);
