-- Named queries of the Python client (recdb.Client, recdb.AsyncClient). They run as the
-- application's login role: they write only the columns recdb_app may write and read only
-- what it may read (see 090_privileges.sql and sql/v0005/hardening.sql).

-- name: track
-- A batch of events, one array per column, in the given order. A NULL time is the
-- server's now(), as the column default would be.
INSERT INTO recdb.events (user_id, item_id, kind, value, occurred_at)
SELECT e.user_id, e.item_id, e.kind, e.value, coalesce(e.occurred_at, now())
FROM unnest(%(user_ids)s::bigint[], %(item_ids)s::bigint[], %(kinds)s::text[],
            %(values)s::real[], %(occurred_at)s::timestamptz[])
     WITH ORDINALITY AS e(user_id, item_id, kind, value, occurred_at, ord)
ORDER BY e.ord

-- name: upsert_items
-- New items, or new content for existing ones (the items trigger re-queues a change of
-- title/body/attrs). An unchanged row is not rewritten. Rows go in id order, so two
-- concurrent upserts of overlapping items lock them in the same order (no deadlock).
INSERT INTO recdb.items AS i (item_id, title, body, attrs, available)
SELECT n.item_id, n.title, n.body, n.attrs, n.available
FROM unnest(%(item_ids)s::bigint[], %(titles)s::text[], %(bodies)s::text[],
            %(attrs)s::jsonb[], %(available)s::boolean[])
     AS n(item_id, title, body, attrs, available)
ORDER BY n.item_id
ON CONFLICT (item_id) DO UPDATE
SET title = excluded.title, body = excluded.body, attrs = excluded.attrs,
    available = excluded.available
WHERE (i.title, i.body, i.attrs, i.available)
      IS DISTINCT FROM (excluded.title, excluded.body, excluded.attrs, excluded.available)

-- name: client_rerank
SELECT rank, item_id, score, because_item_id, reason, fresh_events
FROM recdb.rerank(%(user_id)s::bigint, k => %(k)s::integer,
                  candidates => %(candidates)s::bigint[], filter => %(filter)s::jsonb,
                  exclude_seen => %(exclude_seen)s::boolean)

-- name: similar_items
SELECT rank, item_id, score FROM recdb.similar_items(%(item_id)s::bigint, k => %(k)s::integer)

-- name: status_access
-- Which parts of status.sql the connected role may read (recdb_app: not the queues).
SELECT has_table_privilege('recdb.item_queue', 'SELECT')
           AND has_table_privilege('recdb.user_queue', 'SELECT') AS queues,
       has_table_privilege('recdb.workers', 'SELECT') AS workers

-- name: catalog_status
-- The catalog half of status.sql's `status`, for a role that may not read the queues.
SELECT
    (SELECT count(*) FROM recdb.items WHERE embedding IS NOT NULL) AS items_embedded,
    (SELECT count(*) FROM recdb.items)                             AS items_total,
    (SELECT count(*) FROM recdb.users WHERE embedding IS NOT NULL) AS users_embedded,
    (SELECT count(*) FROM recdb.events)                            AS events_total
