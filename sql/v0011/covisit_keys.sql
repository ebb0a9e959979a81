-- recdb 0011: co-visitation lists kept by checks at their boundary (recdb.covisit_apply).
--
-- item_neighbors.score becomes users(i, j) / sqrt(users(j)), without the member's count:
-- rerank() divides by sqrt(users(i)) per history item (recdb.covisit_votes, which now
-- reads covisit_counts), so a popular item's count change rewrites none of the lists
-- that hold it. The stored rows are converted here and serve the same votes meanwhile.
UPDATE recdb.item_neighbors nb SET score = nb.score * sqrt(c.users::float8)
FROM recdb.covisit_counts c
WHERE c.item_id = nb.neighbor_id;
GRANT SELECT ON recdb.covisit_counts TO recdb_app, recdb_readonly;

-- Per list, the gate (the best (key, id) left out of the list) beside the bound (the best
-- left out of list and reserve, now with its id: NULL when nothing else is paired). The
-- old rows hold neither: the next maintenance step rebuilds every list (a mismatch of
-- covisit_state forces it; one full rebuild, 112 s on the 10^6-event bench log).
TRUNCATE recdb.covisit_runner_up, recdb.covisit_reserve;
ALTER TABLE recdb.covisit_runner_up
    ALTER COLUMN score DROP NOT NULL,
    ADD COLUMN neighbor_id bigint,
    ADD COLUMN gate double precision NOT NULL,
    ADD COLUMN gate_id bigint NOT NULL;
DELETE FROM recdb.covisit_state;
