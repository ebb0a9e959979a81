-- Named queries for `recdb bench --soak` (recdb/tools/soak.py). Like the bench's, they
-- run only in a database of their own. What the soak shares with the bench it reads from
-- bench.sql (clear_item_queue, insert_event, queued_users); the queue figures from
-- status.sql's status.

-- name: items_embedding_dim
-- The dimension recdb.items.embedding was migrated with (vector(n) keeps n as typmod).
SELECT atttypmod FROM pg_attribute
WHERE attrelid = 'recdb.items'::regclass AND attname = 'embedding'

-- name: copy_items_with_vectors
-- Items arrive with their vectors: the soak exercises events, users and rerank().
COPY recdb.items (item_id, title, embedding) FROM STDIN WITH (FORMAT BINARY)

-- name: rerank_item_ids
SELECT item_id FROM rerank(%(user_id)s, %(k)s)

-- name: oldest_queued_user_age_s
-- Queue lag: how long the oldest waiting (not parked) user has waited, 0 for none.
SELECT coalesce(extract(epoch FROM now() - min(enqueued_at)), 0)::float8
FROM recdb.user_queue WHERE parked_at IS NULL

-- name: user_queue_rows
-- Every row left, parked ones included.
SELECT count(*) FROM recdb.user_queue
