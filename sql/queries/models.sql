-- Named queries of the model registry (recdb/sequence/registry.py, recdb train, the worker).

-- name: insert_model
-- fold_weights: the fold operator the blob holds, where rerank() reads it.
INSERT INTO recdb.models (kind, config, metrics, text_dim, dim, trained_through, blob, sha256,
                          fold_weights)
VALUES ('sequence', %(config)s, %(metrics)s, %(text_dim)s, %(dim)s, %(trained_through)s,
        %(blob)s, sha256(%(blob)s), %(fold_weights)s::real[])
RETURNING model_id

-- name: active_model
SELECT model_id, sha256 FROM recdb.models WHERE active

-- name: model_blob
SELECT blob, sha256 FROM recdb.models WHERE model_id = %(model_id)s

-- name: activate
SELECT recdb.activate_model(%(model_id)s)

-- name: list_models
SELECT model_id, kind, created_at, active, activated_at, trained_through, dim,
       metrics - 'history' AS metrics, config
FROM recdb.models
ORDER BY model_id DESC
LIMIT %(limit)s

-- name: activation_lock
-- The lock recdb.activate_model() takes: held, no activation can commit in between.
SELECT pg_advisory_xact_lock(hashtext('recdb.activate_model'))

-- name: stage_chunk
-- The next items to project (keyset order): their text vectors and the text they encode.
SELECT item_id, text_embedding, text_key FROM recdb.items
WHERE text_embedding IS NOT NULL AND item_id > %(after)s
ORDER BY item_id
LIMIT %(limit)s

-- name: stage_items
-- A chunk of a model's vectors beside the served ones (recdb.build_vector_space() builds
-- its partition from them).
INSERT INTO recdb.staged_items (space, item_id, text_key, embedding, next)
SELECT %(space)s, v.item_id, v.text_key, v.embedding, v.next
FROM unnest(%(ids)s::bigint[], %(text_keys)s::text[], %(vectors)b::vector[],
            %(nexts)b::vector[]) AS v(item_id, text_key, embedding, next)

-- name: unstage
SELECT recdb.drop_staged_space(%(space)s)

-- name: staging_lock
-- Held (session-level) by the session that activates space %(space)s, from its staging to
-- its switch: a second activation of the same model is refused instead of interleaving
-- its chunks with the first's, and a staging whose lock nobody holds was left by an
-- activation that was killed.
SELECT pg_try_advisory_lock(hashtextextended('recdb.staging', %(space)s))

-- name: staging_unlock
SELECT pg_advisory_unlock(hashtextextended('recdb.staging', %(space)s))

-- name: staged_spaces
-- Spaces with staged rows or a built table (item_vectors_<space>_next). The rows are read
-- one key probe per space (a loose scan of the key), not the 10^6 rows of a staging.
WITH RECURSIVE s(space) AS (
    (SELECT t.space FROM recdb.staged_items t ORDER BY t.space LIMIT 1)
    UNION ALL
    SELECT (SELECT t.space FROM recdb.staged_items t WHERE t.space > s.space
            ORDER BY t.space LIMIT 1)
    FROM s WHERE s.space IS NOT NULL
)
SELECT s.space FROM s WHERE s.space IS NOT NULL
UNION
SELECT substring(c.relname FROM '^item_vectors_([0-9]+)_next$')::bigint
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'recdb' AND c.relkind = 'r' AND c.relname ~ '^item_vectors_[0-9]+_next$'

-- name: stage_text_vectors
SELECT recdb.stage_stored_vectors(0, true)

-- name: build_settings
-- The index build's memory: the graph of 10^6 384-d vectors needs ~2 GB to build in RAM.
SELECT set_config('maintenance_work_mem', %(memory)s, true)

-- name: build_vector_space
SELECT recdb.build_vector_space(%(space)s)

-- name: items_total
SELECT count(*) FROM recdb.items WHERE text_embedding IS NOT NULL

-- name: vector_columns_dim
-- What vector(n) the item columns were migrated with (a model must produce n-d vectors).
SELECT a.atttypmod FROM pg_attribute a
WHERE a.attrelid = 'recdb.items'::regclass AND a.attname = 'embedding'
