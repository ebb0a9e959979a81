-- Named queries of `recdb eval --fresh N` (recdb/tools/eval/fresh.py): hold out each
-- evaluated user's newest N events, put them back, and keep the collaborative tables as
-- computed for the full history meanwhile. Run as the eval database's owner, on one
-- connection (the temp tables live in its session).

-- name: fresh_save_collaborative
-- The tables maintenance rebuilds from the events (popularity, co-visitation), as they are
-- for the full history: the worker's drain on the held-out history would rewrite them.
DROP TABLE IF EXISTS recdb_fresh_popularity, recdb_fresh_popularity_state,
    recdb_fresh_item_neighbors,
    recdb_fresh_covisit_user_items, recdb_fresh_covisit_counts, recdb_fresh_covisit_pairs,
    recdb_fresh_covisit_runner_up, recdb_fresh_covisit_reserve, recdb_fresh_covisit_state;
CREATE TEMP TABLE recdb_fresh_popularity AS TABLE recdb.popularity;
CREATE TEMP TABLE recdb_fresh_popularity_state AS TABLE recdb.popularity_state;
CREATE TEMP TABLE recdb_fresh_item_neighbors AS TABLE recdb.item_neighbors;
CREATE TEMP TABLE recdb_fresh_covisit_user_items AS TABLE recdb.covisit_user_items;
CREATE TEMP TABLE recdb_fresh_covisit_counts AS TABLE recdb.covisit_counts;
CREATE TEMP TABLE recdb_fresh_covisit_pairs AS TABLE recdb.covisit_pairs;
CREATE TEMP TABLE recdb_fresh_covisit_runner_up AS TABLE recdb.covisit_runner_up;
CREATE TEMP TABLE recdb_fresh_covisit_reserve AS TABLE recdb.covisit_reserve;
CREATE TEMP TABLE recdb_fresh_covisit_state AS TABLE recdb.covisit_state

-- name: fresh_restore_collaborative
-- Back to the saved tables (inside one transaction; nothing else runs on the eval database
-- meanwhile). The co-visitation lock keeps out a maintenance step, as refresh_neighbors().
-- Popularity: its tables as saved, rebuilt by its next run (counted_through NULL): the
-- events it counted went out and came back as new ones meanwhile.
SELECT pg_advisory_xact_lock(hashtext('recdb.covisitation'));
SELECT pg_advisory_xact_lock(hashtext('recdb.refresh_popularity'));
TRUNCATE recdb.popularity, recdb.popularity_state, recdb.popularity_changes,
    recdb.item_neighbors, recdb.covisit_user_items,
    recdb.covisit_counts, recdb.covisit_pairs, recdb.covisit_runner_up, recdb.covisit_reserve,
    recdb.covisit_state;
INSERT INTO recdb.popularity SELECT * FROM recdb_fresh_popularity;
INSERT INTO recdb.popularity_state SELECT * FROM recdb_fresh_popularity_state;
UPDATE recdb.popularity_state SET counted_through = NULL;
INSERT INTO recdb.item_neighbors SELECT * FROM recdb_fresh_item_neighbors;
INSERT INTO recdb.covisit_user_items SELECT * FROM recdb_fresh_covisit_user_items;
INSERT INTO recdb.covisit_counts SELECT * FROM recdb_fresh_covisit_counts;
INSERT INTO recdb.covisit_pairs SELECT * FROM recdb_fresh_covisit_pairs;
INSERT INTO recdb.covisit_runner_up SELECT * FROM recdb_fresh_covisit_runner_up;
INSERT INTO recdb.covisit_reserve SELECT * FROM recdb_fresh_covisit_reserve;
INSERT INTO recdb.covisit_state SELECT * FROM recdb_fresh_covisit_state

-- name: fresh_drop_saved
DROP TABLE IF EXISTS recdb_fresh_popularity, recdb_fresh_popularity_state,
    recdb_fresh_item_neighbors,
    recdb_fresh_covisit_user_items, recdb_fresh_covisit_counts, recdb_fresh_covisit_pairs,
    recdb_fresh_covisit_runner_up, recdb_fresh_covisit_reserve, recdb_fresh_covisit_state,
    recdb_fresh_held

-- name: fresh_held_table
-- The held-out events, every column (event_id: the order they go back in).
DROP TABLE IF EXISTS recdb_fresh_held;
CREATE TEMP TABLE recdb_fresh_held (LIKE recdb.events)

-- name: fresh_hold_out
-- Delete each user's newest N events, newest by (occurred_at, event_id): per user the
-- eval inserts events in chronological order (training before validation), so these are
-- also the user's N highest event ids. The events trigger queues the users.
WITH newest AS (
    SELECT e.user_id, e.event_id
    FROM unnest(%(users)s::bigint[]) AS u(user_id)
    CROSS JOIN LATERAL (
        SELECT e.user_id, e.event_id FROM recdb.events e
        WHERE e.user_id = u.user_id
        ORDER BY e.occurred_at DESC, e.event_id DESC
        LIMIT %(n)s
    ) e
), gone AS (
    DELETE FROM recdb.events e USING newest n
    WHERE e.user_id = n.user_id AND e.event_id = n.event_id
    RETURNING e.*
)
INSERT INTO recdb_fresh_held SELECT * FROM gone

-- name: fresh_put_back
-- The same events again (item, kind, value, times), in their old order: new event ids and
-- a new transaction, so rerank() folds them until the worker has seen them. The events
-- trigger queues the users (the eval drains only after scoring the fold).
INSERT INTO recdb.events (user_id, item_id, kind, value, occurred_at, recorded_at)
SELECT h.user_id, h.item_id, h.kind, h.value, h.occurred_at, h.recorded_at
FROM recdb_fresh_held h
ORDER BY h.event_id

-- name: fresh_folded_events
-- How many events rerank() folds into the users' stored vectors right now.
SELECT coalesce(sum(v.fresh_events), 0)::bigint
FROM unnest(%(users)s::bigint[]) AS u(user_id)
CROSS JOIN LATERAL recdb.user_vector(u.user_id) v

-- name: fresh_event_count
SELECT count(*) FROM recdb.events
