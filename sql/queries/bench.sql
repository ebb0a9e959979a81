-- Named queries for `recdb bench` (recdb/tools/bench/, loaded by its db.q()). They run
-- only in the bench's own database, never in an application database.

-- name: reset
TRUNCATE recdb.events, recdb.users, recdb.user_queue, recdb.item_queue,
         recdb.popularity, recdb.popularity_state, recdb.popularity_changes,
         recdb.item_next, recdb.new_items, recdb.items, recdb.item_vectors, recdb.workers
         RESTART IDENTITY

-- name: hnsw_indexes
-- The searched vectors' HNSW index definition (on the partitioned parent: dropping it
-- drops the served partition's), so a bulk load can drop it and rebuild it exactly as the
-- migration defined it (a bulk build is far faster than inserts). Without ONLY: the
-- definition of a partitioned index reads "ON ONLY", which would build no partition's.
SELECT i.indexname, replace(i.indexdef, ' ON ONLY ', ' ON ') AS indexdef
FROM pg_indexes i
WHERE i.schemaname = 'recdb' AND i.tablename = 'item_vectors' AND i.indexdef ILIKE '%% USING hnsw %%'

-- name: drop_index
-- The index name is an identifier: composed in with psycopg.sql, not a parameter.
DROP INDEX recdb.{index}

-- name: copy_items
COPY recdb.items (item_id, title, body, attrs, available, created_at, embedding, embedded_at, encoder)
FROM STDIN (FORMAT BINARY)

-- name: clear_item_queue
-- Items arrive with their vectors already: nothing for the worker to encode.
DELETE FROM recdb.item_queue

-- name: bulk_index_build_settings
-- Bulk HNSW build: generous memory keeps the graph in RAM; parallel workers use the cores.
SELECT set_config('maintenance_work_mem', '2GB', false),
       set_config('max_parallel_maintenance_workers', %(workers)s::text, false)

-- name: reset_bulk_index_build_settings
RESET maintenance_work_mem;
RESET max_parallel_maintenance_workers;

-- name: copy_events
COPY recdb.events (user_id, item_id, kind, value, occurred_at) FROM STDIN (FORMAT BINARY)

-- name: analyze
-- The state autovacuum keeps between timings: statistics, and the visibility map that lets
-- rerank()'s co-visitation votes read item_neighbors_votes only (autocommit: VACUUM
-- cannot run in a transaction).
VACUUM (ANALYZE) recdb.items, recdb.events, recdb.users, recdb.popularity,
    recdb.popularity_state, recdb.event_kinds, recdb.item_neighbors, recdb.new_items

-- name: is_superuser
SELECT rolsuper FROM pg_roles WHERE rolname = current_user

-- name: checkpoint
-- Superusers only: so that no checkpoint of the load lands inside the timings.
CHECKPOINT

-- name: current_covisit_weight
SELECT covisit_weight FROM recdb.settings

-- name: set_covisit_weight
-- 0 for the vector path: the app-side emulation and the recall reference rank by vector
-- similarity and priors; with the co-visitation term off, all three compute the same thing.
UPDATE recdb.settings SET covisit_weight = %(covisit_weight)s

-- name: set_weights
UPDATE recdb.settings
SET popularity_weight = %(popularity_weight)s, diversity_penalty = %(diversity_penalty)s,
    freshness_weight = %(freshness_weight)s

-- name: rerank
SELECT rank, item_id, score, because_item_id, reason, fresh_events
FROM rerank(%(user_id)s, %(k)s)

-- name: rerank_filtered
SELECT rank, item_id, score, because_item_id, reason, fresh_events
FROM rerank(%(user_id)s, %(k)s, filter => %(filter)s)

-- name: rerank_with_watermark
-- One statement, one snapshot: the ranking and the worker's watermark it was computed
-- against (a STABLE function sees its caller's snapshot).
SELECT r.item_id, r.fresh_events,
       (SELECT u.encoded_through FROM recdb.users u WHERE u.user_id = %(user_id)s)
FROM rerank(%(user_id)s, %(k)s) r
ORDER BY r.rank

-- name: select1
SELECT 1

-- name: cpu_spin
-- Nothing but CPU in one backend (the concurrency floor): count a series of n rows.
SELECT count(*) FROM generate_series(1, %(n)s::integer)

-- name: user_vector
SELECT v.embedding FROM recdb.user_vector(%(user_id)s) v

-- name: plain_ann_settings
-- Inside a transaction: pgvector's defaults for the catalog-level ANN figure.
SET LOCAL hnsw.ef_search = 40;
SET LOCAL hnsw.iterative_scan = off;

-- name: ann_top
-- Plain ANN over the whole catalog (no filters), for the catalog-level recall figure.
SELECT item_id FROM recdb.item_vectors ORDER BY embedding <=> %(vec)s LIMIT %(k)s

-- name: seen_items
-- Exactly rerank()'s seen-exclusion.
SELECT DISTINCT e.item_id
FROM recdb.events e JOIN recdb.event_kinds ek ON ek.kind = e.kind AND ek.counts_as_seen
WHERE e.user_id = %(user_id)s

-- name: bench_users
SELECT u.user_id FROM recdb.users u WHERE u.embedding IS NOT NULL ORDER BY u.user_id

-- name: bench_user_event_counts
-- Events per encoded user: the ML-100K user classes (light, median, heavy).
SELECT u.user_id, count(*) AS events
FROM recdb.users u JOIN recdb.events e ON e.user_id = u.user_id
WHERE u.embedding IS NOT NULL
GROUP BY u.user_id
ORDER BY u.user_id

-- name: stored_user_vectors
-- The worker's vectors, the raw HNSW query's parameter.
SELECT user_id, embedding FROM recdb.users
WHERE user_id = ANY (%(ids)s::bigint[]) AND embedding IS NOT NULL

---------------------------------------------------------------------------
-- The floors under rerank(): the bare ANN query, and the same without the index.
---------------------------------------------------------------------------

-- name: raw_hnsw_settings
-- The hnsw settings rerank() uses for the same k (its ef_search, relaxed iterative scan).
-- No sequential scans: on a small catalog (ML-100K) the planner would rather sort the
-- table, and the figure would not be the HNSW search any more.
SELECT set_config('hnsw.ef_search', %(ef_search)s::text, false),
       set_config('hnsw.iterative_scan', 'relaxed_order', false),
       set_config('enable_seqscan', 'off', false)

-- name: exact_scan_settings
-- No index scans: the raw query becomes an exact scan and sort of the whole catalog.
SELECT set_config('enable_indexscan', 'off', false),
       set_config('enable_seqscan', 'on', false)

-- name: raw_hnsw
-- The searched vectors (the served space's partition), nothing else.
SELECT item_id FROM recdb.item_vectors
ORDER BY embedding <=> %(vec)s LIMIT %(k)s

-- name: explain_raw_hnsw
-- Whether raw_hnsw runs on the HNSW index (the planner may scan a small table instead).
EXPLAIN SELECT item_id FROM recdb.item_vectors
ORDER BY embedding <=> %(vec)s LIMIT %(k)s

---------------------------------------------------------------------------
-- The same ranking done application-side: several round trips and Python.
---------------------------------------------------------------------------

-- name: app_event_kinds
SELECT kind, weight, half_life, counts_as_seen, value_center, value_scale FROM recdb.event_kinds

-- name: app_settings
-- The ranking settings an application caches at start-up.
SELECT popularity_weight, diversity_penalty, freshness_weight,
       extract(epoch FROM freshness_half_life)::float8, candidate_factor, ef_search,
       max_fold_events, explain_history
FROM recdb.settings

-- name: app_session_settings
-- The session settings rerank() sets per call; an application sets them once per connection.
SELECT set_config('hnsw.iterative_scan', 'relaxed_order', false),
       set_config('hnsw.ef_search', %(ef_search)s::text, false),
       set_config('hnsw.max_scan_tuples', '20000', false)

-- name: app_user
SELECT embedding, norm, encoded_through, last_event_at FROM recdb.users WHERE user_id = %(user_id)s

-- name: app_events
-- The user's history, newest first: for seen-exclusion, explanation and the fold.
SELECT event_id, item_id, kind, value, occurred_at
FROM recdb.events WHERE user_id = %(user_id)s ORDER BY event_id DESC

-- name: app_item_vectors
SELECT item_id, embedding, title FROM recdb.items
WHERE item_id = ANY (%(ids)s::bigint[]) AND embedding IS NOT NULL

-- name: app_ann
-- Plain pgvector ANN with the same filters; the session carries rerank()'s hnsw settings.
SELECT v.item_id, v.embedding, i.created_at
FROM recdb.item_vectors v JOIN recdb.items i ON i.item_id = v.item_id
WHERE v.available AND NOT (v.item_id = ANY (%(seen)s::bigint[]))
ORDER BY v.embedding <=> %(vec)s
LIMIT %(limit)s

-- name: app_popularity
SELECT item_id, score FROM recdb.item_popularity WHERE item_id = ANY (%(ids)s::bigint[])

---------------------------------------------------------------------------
-- Ingest: the real table (with triggers) against a trigger-less copy.
---------------------------------------------------------------------------

-- name: disable_queue_trigger
-- The ingest baseline: the same table, indexes and size, without the trigger that
-- validates and queues (the bench database is the bench's own).
ALTER TABLE recdb.events DISABLE TRIGGER events_inserted

-- name: enable_queue_trigger
ALTER TABLE recdb.events ENABLE TRIGGER events_inserted

-- name: set_synchronous_commit
SELECT set_config('synchronous_commit', %(value)s, false)

-- name: reset_synchronous_commit
RESET synchronous_commit

-- name: insert_event
INSERT INTO recdb.events (user_id, item_id, kind) VALUES (%(user_id)s, %(item_id)s, %(kind)s)

-- name: insert_events_batch
INSERT INTO recdb.events (user_id, item_id, kind)
SELECT * FROM unnest(%(users)s::bigint[], %(items)s::bigint[], %(kinds)s::text[])

-- name: delete_events_after
-- Undo the ingest test's rows so later phases see the loaded histories only.
DELETE FROM recdb.events WHERE event_id > %(event_id)s

-- name: max_event_id
SELECT coalesce(max(event_id), 0) FROM recdb.events

-- name: clear_user_queue
DELETE FROM recdb.user_queue

---------------------------------------------------------------------------
-- Freshness.
---------------------------------------------------------------------------

-- name: insert_events_returning
INSERT INTO recdb.events (user_id, item_id, kind)
SELECT * FROM unnest(%(users)s::bigint[], %(items)s::bigint[], %(kinds)s::text[])
RETURNING event_id, user_id

-- name: insert_event_returning
INSERT INTO recdb.events (user_id, item_id, kind) VALUES (%(user_id)s, %(item_id)s, %(kind)s)
RETURNING event_id

-- name: watermarks
SELECT user_id, encoded_through FROM recdb.users WHERE user_id = ANY (%(ids)s::bigint[])

-- name: live_workers
SELECT count(*) FROM recdb.workers WHERE stopped_at IS NULL

-- name: copy_new_items
COPY recdb.items (item_id, title, body, attrs) FROM STDIN (FORMAT BINARY)

-- name: queued_users
-- Users waiting for the worker (parked ones aside); also the soak's drain check.
SELECT count(*) FROM recdb.user_queue WHERE parked_at IS NULL

-- name: delete_items_from
DELETE FROM recdb.items WHERE item_id >= %(first)s

-- name: text_vectors_for_history_items
-- The sequence encoder reads users' items through their text vectors: the bench's items
-- were COPYed with `embedding` only, so the events' items get it as their text vector.
UPDATE recdb.items SET text_embedding = embedding
WHERE text_embedding IS NULL AND embedding IS NOT NULL
  AND item_id IN (SELECT DISTINCT item_id FROM recdb.events)

-- name: event_kind_names
SELECT kind FROM recdb.event_kinds ORDER BY kind

-- name: serve_model_without_reprojection
-- Marks a model active without recdb.activate_model(): only the user path is timed, so the
-- catalogue is not re-queued.
UPDATE recdb.models SET active = coalesce(model_id = %(model_id)s, false)

---------------------------------------------------------------------------
-- The machine.
---------------------------------------------------------------------------

-- name: server_info
-- Column names are the keys of the report's "machine" section.
SELECT current_setting('server_version') AS postgres,
       (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector,
       current_setting('shared_buffers') AS shared_buffers,
       current_setting('work_mem') AS work_mem,
       current_setting('jit') AS jit,
       current_setting('synchronous_commit') AS synchronous_commit,
       current_setting('max_connections') AS max_connections

-- name: bench_fresh_events
-- ml100k fold cost: n click events per user on items the user has not seen, committed
-- while no worker runs (rerank() folds them).
INSERT INTO recdb.events (user_id, item_id, kind)
SELECT u.user_id, pick.item_id, 'click'
FROM unnest(%(users)s::bigint[]) AS u(user_id)
CROSS JOIN LATERAL (
    SELECT i.item_id FROM recdb.items i
    WHERE i.embedding IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM recdb.events e WHERE e.user_id = u.user_id AND e.item_id = i.item_id)
    ORDER BY md5(i.item_id::text || u.user_id::text)
    LIMIT %(n)s
) pick

-- name: bench_fold_state
-- ml100k fold cost: the users' stored snapshot and watermark (restored after).
SELECT u.user_id, u.encoded_snapshot::text, u.encoded_through
FROM recdb.users u WHERE u.user_id = ANY (%(users)s::bigint[]) ORDER BY u.user_id

-- name: bench_fold_state_covering
-- ... and a snapshot and watermark that cover every event committed so far: nothing to
-- fold, as after the worker re-encoded the users.
SELECT u.user_id, pg_current_snapshot()::text,
       (SELECT max(e.event_id) FROM recdb.events e WHERE e.user_id = u.user_id)
FROM recdb.users u WHERE u.user_id = ANY (%(users)s::bigint[]) ORDER BY u.user_id

-- name: bench_set_fold_state
UPDATE recdb.users u SET encoded_snapshot = s.snap::pg_snapshot, encoded_through = s.through
FROM unnest(%(users)s::bigint[], %(snaps)s::text[], %(through)s::bigint[]) AS s(user_id, snap, through)
WHERE u.user_id = s.user_id

-- name: bench_prior_model
-- The content prior as if fitted in the served model's space (only the fold differs).
UPDATE recdb.content_prior SET model_id = %(model_id)s

-- name: bench_install_fold
-- ml100k fold cost with a model's fold: what activate_model() installs for a model with a
-- fold operator (weights and per-item "what follows" vectors; the cost does not depend
-- on their values), without re-projecting the catalogue.
UPDATE recdb.serving SET model_id = %(model_id)s, fold_weights = %(weights)s::real[]

-- name: bench_install_next
INSERT INTO recdb.item_next (item_id, model_id, embedding)
SELECT i.item_id, %(model_id)s, i.embedding FROM recdb.items i WHERE i.embedding IS NOT NULL
ON CONFLICT (item_id) DO NOTHING

-- name: current_new_item_knobs
SELECT content_prior_weight, explore_share FROM recdb.settings

-- name: set_new_item_knobs
-- The vector path turns the brand-new item terms off with co-visitation: the app-side
-- emulation and the recall reference know neither.
UPDATE recdb.settings SET content_prior_weight = %(content_prior_weight)s,
                          explore_share = %(explore_share)s
