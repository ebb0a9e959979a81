-- recdb 0010: a reserve behind each co-visitation neighbour list. covisit_relist keeps the
-- next covisit_neighbors best here and the best score left out of both in
-- covisit_runner_up, so a step can prove a list from what it already knows instead of
-- re-ranking the item's whole pair range (covisit_apply).
CREATE TABLE recdb.covisit_reserve (
    item_id     bigint NOT NULL,
    neighbor_id bigint NOT NULL,
    score       double precision NOT NULL,
    PRIMARY KEY (item_id, neighbor_id)
);
CREATE INDEX covisit_reserve_neighbor ON recdb.covisit_reserve (neighbor_id);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON recdb.covisit_reserve TO recdb_worker;
-- The lists were built without a reserve: the next step rebuilds them with one.
DELETE FROM recdb.covisit_state;
