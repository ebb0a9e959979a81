-- Named queries of `recdb eval` (recdb/evaluate.py).

-- name: rerank_top
-- The product's own ranking: full catalogue, the user's history excluded by rerank().
SELECT item_id FROM rerank(%(user_id)s, k => %(k)s) ORDER BY rank

-- name: settings
SELECT to_jsonb(s) - 'id' FROM recdb.settings s

-- name: event_kinds
SELECT jsonb_object_agg(kind, to_jsonb(k) - 'kind' ORDER BY kind) FROM recdb.event_kinds k
