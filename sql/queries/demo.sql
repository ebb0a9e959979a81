-- Named queries of `recdb demo` (recdb/demo.py).

-- name: top
-- rerank() as an app would call it, plus the title and genres to print.
SELECT r.rank, r.item_id, r.score, r.reason,
       CASE WHEN i.title ~ '\(\d{4}\)\s*$' OR i.attrs->>'year' IS NULL THEN i.title
            ELSE i.title || ' (' || (i.attrs->>'year') || ')' END AS title,
       ARRAY(SELECT jsonb_array_elements_text(
                 CASE WHEN jsonb_typeof(i.attrs->'genres') = 'array' THEN i.attrs->'genres'
                      ELSE '[]'::jsonb END)) AS genres,
       r.fresh_events
FROM rerank(%(user_id)s, k => %(k)s, filter => %(filter)s::jsonb) r
JOIN recdb.items i ON i.item_id = r.item_id
ORDER BY r.rank

-- name: user_exists
SELECT 1 FROM recdb.events WHERE user_id = %(user_id)s LIMIT 1

-- name: genre_shares
-- Per genre: the share of the catalogue's films this user has an event on, and how many
-- encoded films are left to click.
WITH seen AS (
    SELECT DISTINCT e.item_id FROM recdb.events e WHERE e.user_id = %(user_id)s
)
SELECT g.genre,
       avg((s.item_id IS NOT NULL)::int)::float8 AS share,
       count(*) FILTER (WHERE s.item_id IS NULL AND i.embedding IS NOT NULL) AS unseen
FROM recdb.items i
CROSS JOIN LATERAL jsonb_array_elements_text(
    CASE WHEN jsonb_typeof(i.attrs->'genres') = 'array' THEN i.attrs->'genres'
         ELSE '[]'::jsonb END) AS g(genre)
LEFT JOIN seen s ON s.item_id = i.item_id
WHERE i.available
GROUP BY g.genre
ORDER BY g.genre

-- name: click_genre
-- Clicks on the most popular unseen films of one genre. They are dated just after the
-- user's newest event: MovieLens history is from 1997-98, and a click dated today would
-- make the worker's time decay erase that whole history (the user "comes back" instead).
INSERT INTO recdb.events (user_id, item_id, kind, occurred_at)
SELECT %(user_id)s, c.item_id, 'click',
       coalesce((SELECT max(e.occurred_at) FROM recdb.events e WHERE e.user_id = %(user_id)s),
                now()) + c.n * interval '1 minute'
FROM (
    SELECT i.item_id, row_number() OVER (ORDER BY p.score DESC NULLS LAST, i.item_id) AS n
    FROM recdb.items i
    LEFT JOIN recdb.item_popularity p ON p.item_id = i.item_id
    WHERE i.available AND i.embedding IS NOT NULL
      AND i.attrs @> jsonb_build_object('genres', %(genre)s::jsonb)
      AND NOT EXISTS (SELECT 1 FROM recdb.events e
                      WHERE e.user_id = %(user_id)s AND e.item_id = i.item_id)
    ORDER BY n
    LIMIT %(n)s
) c
ORDER BY c.n
RETURNING event_id, item_id

-- name: titles
SELECT item_id, title FROM recdb.items WHERE item_id = ANY (%(ids)s::bigint[])

-- name: user_through
SELECT encoded_through FROM recdb.users WHERE user_id = %(user_id)s

-- name: delete_clicks
DELETE FROM recdb.events
WHERE user_id = %(user_id)s AND event_id = ANY (%(event_ids)s::bigint[]) AND kind = 'click'
