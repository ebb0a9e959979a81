-- Named queries for `recdb bench --scale` (recdb/tools/bench/scale.py). They run only in
-- the bench's own database, never in an application database.

-- name: keep_queued_users
-- The users/s figure is measured on a bounded drain: every other user leaves the queue
-- (their events stay; co-visitation and popularity still count them).
DELETE FROM recdb.user_queue WHERE user_id <> ALL (%(users)s::bigint[])

-- name: sizes
-- Bytes on disk: the database, the event log (heap and indexes), the catalogue (heap,
-- vectors and HNSW), users, the co-visitation counts, and the working set rerank() reads
-- on every call (the catalogue, users, neighbour lists, popularity, brand-new items).
SELECT pg_database_size(current_database()) AS database,
       pg_total_relation_size('recdb.events') AS events,
       pg_total_relation_size('recdb.items') AS items,
       pg_total_relation_size('recdb.users') AS users,
       pg_total_relation_size('recdb.covisit_pairs')
           + pg_total_relation_size('recdb.covisit_user_items')
           + pg_total_relation_size('recdb.covisit_counts')
           + pg_total_relation_size('recdb.covisit_reserve') AS covisitation,
       pg_total_relation_size('recdb.items') + pg_total_relation_size('recdb.users')
           + pg_total_relation_size('recdb.item_neighbors')
           + pg_total_relation_size('recdb.popularity')
           + pg_total_relation_size('recdb.new_items') AS served_working_set

-- name: scale_rerank_candidates
SELECT rank, item_id, score, because_item_id, reason, fresh_events
FROM rerank(%(user_id)s, %(k)s, candidates => %(candidates)s)

-- name: encoded_users
SELECT u.user_id FROM recdb.users u
WHERE u.user_id = ANY (%(users)s::bigint[]) AND u.embedding IS NOT NULL

-- name: scale_insert_event
-- One event as an app writes it (its own transaction; the time is the server's now()).
INSERT INTO recdb.events (user_id, item_id, kind, value)
VALUES (%(user_id)s, %(item_id)s, %(kind)s, %(value)s)

-- name: text_vectors_for_all_items
-- The catalogue was COPYed with `embedding` only: as the text vectors a model projects.
UPDATE recdb.items SET text_embedding = embedding, text_key = 'bench ' || item_id
WHERE text_embedding IS NULL AND embedding IS NOT NULL

-- name: rowwise_rewrite
-- What activation cost before revision 0016 (the worker rewrote every item's served
-- vector through the live HNSW index): a sample rewritten row by row, rolled back.
UPDATE recdb.items i SET embedding = recdb.scale(i.embedding, -1.0), embedded_at = now()
WHERE i.item_id = %(item_id)s

-- name: encoded_items_sample
SELECT item_id FROM recdb.items WHERE embedding IS NOT NULL ORDER BY md5(item_id::text) LIMIT %(n)s

-- name: covisit_pair_writes
-- Rows of the co-visitation pair counts inserted, updated or deleted so far (cumulative
-- statistics: a session's own are flushed by pg_stat_force_next_flush() and a commit).
-- The work of a maintenance step, whatever the memory makes it cost.
SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
FROM pg_stat_user_tables WHERE relid = 'recdb.covisit_pairs'::regclass

-- name: flush_statistics
SELECT pg_stat_force_next_flush()
