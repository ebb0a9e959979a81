-- Named queries of the worker (recdb/worker/). Claims lock queue rows with
-- SKIP LOCKED; the batch transaction writes vectors and deletes the rows it holds.

-- name: schema_has_models
SELECT to_regclass('recdb.models') IS NOT NULL

-- name: embedding_dims
SELECT a.attrelid::regclass::text AS tbl, a.atttypmod AS dims
FROM pg_attribute a
WHERE a.attrelid IN ('recdb.items'::regclass, 'recdb.users'::regclass) AND a.attname = 'embedding'

-- name: claim_items
SELECT q.item_id, q.attempts
FROM recdb.item_queue q
WHERE q.parked_at IS NULL AND (%(ignore_backoff)s OR q.not_before <= now())
  AND (%(only)s::bigint[] IS NULL OR q.item_id = ANY (%(only)s::bigint[]))
ORDER BY q.enqueued_at, q.item_id
LIMIT %(limit)s
FOR UPDATE OF q SKIP LOCKED

-- name: lock_items
-- The claimed items' rows are locked too (NO KEY UPDATE: event inserts' FK checks still
-- pass). An app UPDATE in flight holds its row: we skip it (its queue row stays for the
-- next batch) instead of deadlocking with its trigger, which waits for our queue lock.
-- legacy_ok: a text vector carried over by migration 0003 (no text_key yet), made by this
-- worker's text model and newer than the item's last content change, is still the
-- current text's vector.
SELECT i.item_id, i.title, i.body, i.attrs, i.text_key, i.text_embedding,
       (i.text_key IS NULL AND i.text_embedding IS NOT NULL
        AND i.encoder = %(model_name)s AND i.embedding = i.text_embedding
        AND i.embedded_at >= i.updated_at) AS legacy_ok
FROM recdb.items i
WHERE i.item_id = ANY (%(ids)s::bigint[])
FOR NO KEY UPDATE OF i SKIP LOCKED

-- name: items_exist
SELECT item_id FROM recdb.items WHERE item_id = ANY (%(ids)s::bigint[])

-- name: write_items
-- text_embedding: the text model's vector; embedding (searched): the active model's item
-- output, or the text vector when no model is active. The items trigger copies it to the
-- served space's partition of recdb.item_vectors; the batch holds the activation lock
-- shared (batch_lock), so that space is the one this batch encoded for.
UPDATE recdb.items i
SET embedding = v.embedding, text_embedding = v.text_embedding, text_key = v.text_key,
    embedded_at = now(), encoder = %(encoder)s
FROM unnest(%(ids)s::bigint[], %(vectors)b::vector[], %(text_vectors)b::vector[],
            %(text_keys)s::text[]) AS v(item_id, embedding, text_embedding, text_key)
WHERE i.item_id = v.item_id

-- name: batch_lock
-- Every batch transaction starts here: recdb.activate_model() takes this lock exclusive,
-- so a batch runs wholly before an activation or wholly after it.
SELECT pg_advisory_xact_lock_shared(hashtext('recdb.activate_model'))

-- name: write_item_next
-- The served model's "what follows this item" vectors (its zero-lag fold reads them).
INSERT INTO recdb.item_next AS n (item_id, model_id, embedding)
SELECT v.item_id, %(model_id)s, v.embedding
FROM unnest(%(ids)s::bigint[], %(vectors)b::vector[]) AS v(item_id, embedding)
ON CONFLICT (item_id) DO UPDATE SET model_id = excluded.model_id, embedding = excluded.embedding

-- name: requeue_item_users
-- A user's vector is built from item vectors: when those change, the user is stale.
INSERT INTO recdb.user_queue (user_id)
SELECT DISTINCT e.user_id FROM recdb.events e WHERE e.item_id = ANY (%(ids)s::bigint[])

-- name: defer_items
-- Claimed rows whose item an app transaction holds: not now, try again shortly (without
-- counting an attempt), so no worker spins on them while the lock lasts.
UPDATE recdb.item_queue SET not_before = now() + make_interval(secs => %(seconds)s)
WHERE item_id = ANY (%(ids)s::bigint[])

-- name: delete_items
DELETE FROM recdb.item_queue WHERE item_id = ANY (%(ids)s::bigint[])

-- name: claim_users
-- Users of the oldest ready rows we could lock, kept only when no other worker holds the
-- user (advisory lock): two workers never encode the same user at once.
SELECT b.user_id
FROM (
    SELECT DISTINCT q.user_id
    FROM (
        SELECT q.user_id
        FROM recdb.user_queue q
        WHERE q.parked_at IS NULL AND (%(ignore_backoff)s OR q.not_before <= now())
          AND (%(only)s::bigint[] IS NULL OR q.user_id = ANY (%(only)s::bigint[]))
        ORDER BY q.id
        LIMIT %(limit)s
        FOR UPDATE OF q SKIP LOCKED
    ) q
) b
WHERE pg_try_advisory_xact_lock(hashtextextended('recdb.user_queue', b.user_id))

-- name: lock_user_rows
-- Every queued row of the claimed users that nobody else holds, taken BEFORE the events
-- are read: these rows' events are all visible to the read that follows. Rows committed
-- later are not taken and stay queued.
SELECT q.id, q.user_id
FROM recdb.user_queue q
WHERE q.user_id = ANY (%(ids)s::bigint[])
FOR UPDATE OF q SKIP LOCKED

-- name: user_events
-- One row per user: their newest events (at most max_history) in event order, weighted
-- exactly as rerank()'s zero-lag fold weighs them (decay measured from the user's newest
-- event). Packed (int8send / float4send end to end, read as numpy buffers) keeps the
-- transfer to a row per user and no Python object per event.
SELECT u.ord - 1 AS user_index,
       string_agg(int8send(h.item_id), ''::bytea ORDER BY h.event_id) AS items,
       string_agg(float4send(recdb.event_weight(k.weight, k.half_life, k.value_center,
                                                k.value_scale, h.value,
                                                h.ref - h.occurred_at)::real),
                  ''::bytea ORDER BY h.event_id) AS weights,
       max(h.event_id) AS through,
       count(*)::integer AS n,
       max(h.occurred_at) AS last_at,
       -- what this statement saw: stored with the vector, so rerank() folds exactly the
       -- events it did not see (see recdb.user_vector)
       pg_current_snapshot()::text AS snapshot
FROM unnest(%(users)s::bigint[]) WITH ORDINALITY AS u(user_id, ord)
CROSS JOIN LATERAL (
    SELECT e.item_id, e.event_id, e.occurred_at, e.kind, e.value,
           max(e.occurred_at) OVER () AS ref
    FROM (SELECT * FROM recdb.events e
          WHERE e.user_id = u.user_id
          ORDER BY e.event_id DESC
          LIMIT %(max_history)s) e
) h
JOIN recdb.event_kinds k ON k.kind = h.kind
GROUP BY u.ord

-- name: item_vectors
-- Packed: one row, the ids and their vectors' binary forms end to end (vector_send: a
-- 4-byte header, then big-endian float4s), read as one numpy buffer. A row per item cost
-- a Python object each: tens of thousands a batch on a large catalogue. versions: each
-- row's version, what the worker's item vector cache keys on (see item_versions).
SELECT array_agg(item_id) AS ids, string_agg(vector_send(embedding), ''::bytea) AS packed,
       array_agg(xmin::text::bigint) AS versions
FROM recdb.items
WHERE item_id = ANY (%(ids)b::bigint[]) AND embedding IS NOT NULL

-- name: item_versions
-- What the worker's item vector cache (recdb/worker/item_cache.py) checks every batch: the
-- row version of each wanted item that has a vector. xmin changes with every write to the
-- row, whoever makes it (the worker, a DBA's UPDATE, a restore), and VACUUM's freezing
-- keeps it; an index probe and 8 bytes per item, where its vector is 1.5 kB.
SELECT array_agg(item_id) AS ids, array_agg(xmin::text::bigint) AS versions
FROM recdb.items
WHERE item_id = ANY (%(ids)b::bigint[]) AND embedding IS NOT NULL

-- name: user_sequences
-- The sequence model's input: each user's newest max_len events that user_events saw
-- (up to its watermark, visible in its snapshot: an event committed in between waits for
-- the next encoding instead of being counted twice by rerank()'s fold), oldest first (the
-- order recdb train reads).
SELECT u.ord - 1 AS user_index,
       array_agg(h.item_id ORDER BY h.occurred_at, h.event_id) AS items,
       array_agg(h.kind ORDER BY h.occurred_at, h.event_id) AS kinds,
       array_agg(h.value ORDER BY h.occurred_at, h.event_id) AS vals,
       array_agg(extract(epoch FROM h.occurred_at)::float8 ORDER BY h.occurred_at, h.event_id)
           AS ts
FROM unnest(%(users)s::bigint[], %(through)s::bigint[]) WITH ORDINALITY AS u(user_id, through, ord)
CROSS JOIN LATERAL (
    SELECT e.item_id, e.event_id, e.occurred_at, e.kind, e.value
    FROM recdb.events e
    WHERE e.user_id = u.user_id AND e.event_id <= u.through
      AND (e.txid IS NULL OR pg_visible_in_snapshot(e.txid, %(snapshot)s::pg_snapshot))
    ORDER BY e.occurred_at DESC, e.event_id DESC
    LIMIT %(max_len)s
) h
GROUP BY u.ord

-- name: kind_signs
-- Which way a trained model's fold moves a user per event kind (as recdb.user_vector).
SELECT kind, sign(weight) AS sign FROM recdb.event_kinds

-- name: item_text_vectors
-- Packed as item_vectors.
SELECT array_agg(item_id) AS ids, string_agg(vector_send(text_embedding), ''::bytea) AS packed
FROM recdb.items
WHERE item_id = ANY (%(ids)b::bigint[]) AND text_embedding IS NOT NULL

-- name: item_titles
SELECT item_id, title FROM recdb.items WHERE item_id = ANY (%(ids)s::bigint[])

-- name: write_users
-- The users also go to the co-visitation queue (maintenance applies their new sets).
WITH queued AS (
    INSERT INTO recdb.covisit_queue (user_id) SELECT unnest(%(ids)s::bigint[])
)
INSERT INTO recdb.users AS u
    (user_id, embedding, norm, encoded_through, last_event_at, event_count, encoder, encoded_at,
     encoded_snapshot)
SELECT v.user_id, v.embedding, v.norm, v.through, v.last_at, v.n, %(encoder)s, now(),
       %(snapshot)s::pg_snapshot
FROM unnest(%(ids)s::bigint[], %(vectors)b::vector[], %(norms)s::real[], %(through)s::bigint[],
            %(last_at)s::timestamptz[], %(counts)s::integer[])
     AS v(user_id, embedding, norm, through, last_at, n)
ON CONFLICT (user_id) DO UPDATE
SET embedding = excluded.embedding, norm = excluded.norm,
    encoded_through = excluded.encoded_through, last_event_at = excluded.last_event_at,
    event_count = excluded.event_count, encoder = excluded.encoder, encoded_at = excluded.encoded_at,
    encoded_snapshot = excluded.encoded_snapshot

-- name: delete_user_rows
DELETE FROM recdb.user_queue WHERE id = ANY (%(row_ids)s::bigint[])

-- name: fail_items
-- Backoff doubles per attempt (capped at 10 minutes; the exponent too, so no --max-attempts
-- overflows the interval); the last allowed attempt parks the row.
UPDATE recdb.item_queue
SET attempts = attempts + 1, last_error = left(%(error)s, 2000),
    not_before = now() + least(make_interval(secs => %(backoff)s * 2 ^ least(attempts, 20)),
                              interval '10 minutes'),
    parked_at = CASE WHEN attempts + 1 >= %(max_attempts)s THEN now() END
WHERE item_id = ANY (%(ids)s::bigint[])
RETURNING parked_at IS NOT NULL

-- name: fail_users
-- Rows another worker holds are left alone (it will account for them itself).
UPDATE recdb.user_queue
SET attempts = attempts + 1, last_error = left(%(error)s, 2000),
    not_before = now() + least(make_interval(secs => %(backoff)s * 2 ^ least(attempts, 20)),
                              interval '10 minutes'),
    parked_at = CASE WHEN attempts + 1 >= %(max_attempts)s THEN now() END
WHERE id IN (SELECT id FROM recdb.user_queue WHERE user_id = ANY (%(ids)s::bigint[])
             AND parked_at IS NULL FOR UPDATE SKIP LOCKED)
RETURNING parked_at IS NOT NULL

-- name: register_worker
INSERT INTO recdb.workers (worker_id, hostname, pid, device, user_encoder)
VALUES (%(worker_id)s, %(hostname)s, %(pid)s, %(device)s, %(user_encoder)s)
ON CONFLICT (worker_id) DO UPDATE
SET started_at = now(), heartbeat_at = now(), stopped_at = NULL

-- name: heartbeat
UPDATE recdb.workers
SET heartbeat_at = now(), items_encoded = %(items)s, users_encoded = %(users)s,
    batches = %(batches)s, errors = %(errors)s, model_id = %(model_id)s
WHERE worker_id = %(worker_id)s

-- name: stop_worker
UPDATE recdb.workers SET stopped_at = now(), heartbeat_at = now() WHERE worker_id = %(worker_id)s

-- name: forget_stale_workers
DELETE FROM recdb.workers WHERE heartbeat_at < now() - interval '7 days'

-- name: refresh_popularity
-- Maintenance (recdb/worker/maintenance.py), each its own transaction and one worker at a
-- time: the others skip instead of queueing behind it.
SELECT CASE WHEN pg_try_advisory_xact_lock(hashtext('recdb.refresh_popularity'))
            THEN recdb.refresh_popularity() END AS refreshed

-- name: rebuild_popularity
-- The full rebuild (`recdb refresh --full`); waits for a step in flight.
SELECT recdb.rebuild_popularity()

-- name: refresh_neighbors
-- The full rebuild (`recdb refresh --full`); waits for a step in flight.
SELECT recdb.refresh_neighbors()

-- name: sync_covisitation
-- One step of the co-visitation users changed since the last (0: none left).
SELECT recdb.sync_covisitation(%(batch)s)

-- name: apply_retention
SELECT recdb.apply_retention(%(batch)s)

-- name: requeue_all_users
INSERT INTO recdb.user_queue (user_id)
SELECT DISTINCT user_id FROM recdb.events ORDER BY user_id

-- name: requeue_all_items
SELECT recdb.enqueue_items(ARRAY(SELECT item_id FROM recdb.items))

-- name: unpark
UPDATE recdb.item_queue SET parked_at = NULL, attempts = 0, not_before = '-infinity'
WHERE parked_at IS NOT NULL;
UPDATE recdb.user_queue SET parked_at = NULL, attempts = 0, not_before = '-infinity'
WHERE parked_at IS NOT NULL

-- name: queue_depths
-- Rows waiting (not parked): items, distinct users. For progress bars.
SELECT (SELECT count(*) FROM recdb.item_queue WHERE parked_at IS NULL),
       (SELECT count(DISTINCT user_id) FROM recdb.user_queue WHERE parked_at IS NULL);

-- name: set_claim_timeout
-- A worker frozen mid-batch loses its claim (its transaction) after this many ms.
SELECT set_config('idle_in_transaction_session_timeout', %(ms)s, false)

-- name: users_waiting
-- Whether users wait to be re-encoded: maintenance then yields (recdb.worker.maintenance).
SELECT EXISTS (SELECT 1 FROM recdb.user_queue q
               WHERE q.parked_at IS NULL AND q.not_before <= now())

-- name: maintenance_due_in
-- Seconds until the older of the two refreshes is due (0: now, also when one never ran):
-- a worker (re)started just after a refresh does not rebuild again.
SELECT CASE WHEN count(*) < 2 THEN 0.0
            ELSE greatest(0.0, %(interval)s
                               - extract(epoch FROM clock_timestamp() - min(m.finished_at)))::float8
       END
FROM recdb.maintenance m
WHERE m.job IN ('popularity', 'neighbors')

-- name: content_prior_sample
-- What the content prior is fitted on (recdb/worker/content_prior.py): items with
-- popularity of their own and a served vector, a uniform sample of at most %(limit)s
-- (the fit's cost stays bounded on any catalogue), with the space they are served in.
-- Past twice the limit the rows are drawn from %(percent)s of the popularity table's
-- pages (TABLESAMPLE SYSTEM: a read that stays the same size as the table grows) before
-- the seeded order picks the sample; up to it, every row takes part (percent 100).
SELECT i.embedding,
       CASE WHEN p.mass >= s.zero_below THEN p.mass * s.scale ELSE 0 END AS score,
       (SELECT m.model_id FROM recdb.models m WHERE m.active) AS model_id
FROM recdb.popularity p TABLESAMPLE SYSTEM (%(percent)s)
LEFT JOIN recdb.popularity_state s ON true
JOIN recdb.items i ON i.item_id = p.item_id
WHERE i.embedding IS NOT NULL
ORDER BY md5(p.item_id::text || %(salt)s)
LIMIT %(limit)s

-- name: popularity_rows
-- The planner's estimate of recdb.popularity's rows (what sizes the prior's sample).
SELECT greatest(c.reltuples, 0)::float8 FROM pg_catalog.pg_class c
WHERE c.oid = 'recdb.popularity'::regclass

-- name: store_content_prior
INSERT INTO recdb.content_prior AS c (id, model_id, weights, bias, ridge, items, fitted_at)
VALUES (true, %(model_id)s, %(weights)s, %(bias)s, %(ridge)s, %(items)s, now())
ON CONFLICT (id) DO UPDATE
    SET model_id = excluded.model_id, weights = excluded.weights, bias = excluded.bias,
        ridge = excluded.ridge, items = excluded.items, fitted_at = excluded.fitted_at

-- name: clear_content_prior
DELETE FROM recdb.content_prior

-- name: refresh_new_items
-- Items nobody has interacted with yet and their content prior (0 without one): what
-- rerank() explores, rebuilt from every item (the repair path: `recdb refresh --full`;
-- the items trigger and rescore_new_items keep it current otherwise).
DELETE FROM recdb.new_items;
SELECT recdb.list_new_items(ARRAY(
    SELECT i.item_id FROM recdb.items i WHERE i.embedding IS NOT NULL ORDER BY i.item_id))

-- name: rescore_new_items
-- After a refit of the prior: the next %(chunk)s listed items after %(after)s (item order)
-- again through recdb.list_new_items(), which unlists those that got popularity since and
-- re-scores the rest (rows whose score changed only); returns the chunk's last item (NULL:
-- none left). One chunk per transaction (recdb/worker/content_prior.py). It reads the
-- listed items and their rows by key: the cost grows with the items nobody has touched,
-- not with the catalogue.
WITH chunk AS MATERIALIZED (
    SELECT n.item_id FROM recdb.new_items n
    WHERE n.item_id > %(after)s ORDER BY n.item_id LIMIT %(chunk)s)
SELECT (SELECT max(c.item_id) FROM chunk c),
       recdb.list_new_items(ARRAY(SELECT c.item_id FROM chunk c ORDER BY c.item_id))
