-- Named queries of `recdb eval` (recdb/tools/eval/).

-- name: rerank_top
-- The product's own ranking: full catalogue, the user's history excluded by rerank().
SELECT item_id FROM rerank(%(user_id)s, k => %(k)s) ORDER BY rank

-- name: settings_as_json
-- The ranking settings in force, one JSON object (written into the eval protocol).
SELECT to_jsonb(s) - 'id' FROM recdb.settings s

-- name: event_kinds_as_json
-- Every event kind's knobs, {kind: {column: value}}.
SELECT jsonb_object_agg(kind, to_jsonb(k) - 'kind' ORDER BY kind) FROM recdb.event_kinds k

-- name: item_vector_encoders
-- Which encoders wrote the item vectors (text model, or a trained model's item space).
SELECT DISTINCT encoder FROM recdb.items

-- name: refresh_popularity_for_phase
-- Decayed item popularity from the events loaded so far, before a phase is scored.
SELECT recdb.refresh_popularity()
