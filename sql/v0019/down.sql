-- recdb 0019 downgrade (the 0018 function definitions are restored by the revision first).
ALTER TABLE recdb.settings ALTER COLUMN candidate_factor SET DEFAULT 3;
UPDATE recdb.settings SET candidate_factor = 3 WHERE candidate_factor = 2;
DROP FUNCTION recdb.covisit_votes(bigint, integer, bigint[]);
