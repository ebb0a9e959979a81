-- recdb 0011 undone: item_neighbors back to the cosine, covisit_runner_up back to one
-- score; the next step (0010's functions) rebuilds every list.
UPDATE recdb.item_neighbors nb SET score = nb.score / sqrt(c.users::float8)
FROM recdb.covisit_counts c
WHERE c.item_id = nb.neighbor_id;
REVOKE SELECT ON recdb.covisit_counts FROM recdb_app, recdb_readonly;
TRUNCATE recdb.covisit_runner_up, recdb.covisit_reserve;
ALTER TABLE recdb.covisit_runner_up
    DROP COLUMN neighbor_id,
    DROP COLUMN gate,
    DROP COLUMN gate_id,
    ALTER COLUMN score SET NOT NULL;
DELETE FROM recdb.covisit_state;
