-- Named queries of `recdb train` (recdb/sequence/data.py): what the model learns from.

-- name: catalog_text
-- Every item the text encoder has seen: the softmax runs over this catalogue.
SELECT item_id, text_embedding FROM recdb.items
WHERE text_embedding IS NOT NULL
ORDER BY item_id

-- name: histories
-- One row per user: events in the order they happened (ties by event_id), and the
-- watermark of the data (stored with the model).
SELECT e.user_id,
       array_agg(e.item_id ORDER BY e.occurred_at, e.event_id) AS items,
       array_agg(e.kind ORDER BY e.occurred_at, e.event_id) AS kinds,
       array_agg(e.value ORDER BY e.occurred_at, e.event_id) AS vals,
       array_agg(extract(epoch FROM e.occurred_at)::float8 ORDER BY e.occurred_at, e.event_id)
           AS ts
FROM recdb.events e
GROUP BY e.user_id
ORDER BY e.user_id

-- name: watermark
SELECT coalesce(max(event_id), 0) FROM recdb.events

-- name: covisit_weight
SELECT covisit_weight FROM recdb.settings
