-- Co-visitation's working state is derived from the events and read by maintenance only:
-- the users' sets, the pair counts, each list's reserve, gate and bound, the queue of
-- users to apply, and the build marker. UNLOGGED keeps it out of the WAL, which a step
-- otherwise filled with 150-330 MB (mostly full-page images of covisit_pairs) for 200
-- users at 10^6 events, competing with every commit's flush; unlogged, 8-11 MB. A crash
-- (or a standby's promotion) empties these tables, covisit_state with them, so the next
-- step rebuilds everything while rerank() goes on reading the lists and counts it serves
-- (item_neighbors, covisit_counts: logged, and on every standby).
ALTER TABLE recdb.covisit_pairs SET UNLOGGED;
ALTER TABLE recdb.covisit_user_items SET UNLOGGED;
ALTER TABLE recdb.covisit_reserve SET UNLOGGED;
ALTER TABLE recdb.covisit_runner_up SET UNLOGGED;
ALTER TABLE recdb.covisit_queue SET UNLOGGED;
ALTER TABLE recdb.covisit_state SET UNLOGGED;
