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

-- name: rerank_candidates
-- Candidates mode: the app's own list (here every new item) re-ordered for the user.
SELECT item_id FROM rerank(%(user_id)s, k => %(k)s, candidates => %(candidates)s::bigint[])
ORDER BY rank

-- name: cold_item_events
-- Events on the given items (the cold-item protocol holds every one of them out).
SELECT count(*) FROM recdb.events WHERE item_id = ANY(%(items)s::bigint[])

-- name: cold_text_vectors
-- Every item's frozen text-encoder vector (the content baseline of the cold-item protocol).
SELECT item_id, text_embedding FROM recdb.items WHERE text_embedding IS NOT NULL ORDER BY item_id
