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
