-- Named queries of `recdb load` (recdb/load.py): bulk COPY into temp tables, then one
-- set-based statement each, so re-loading the same data changes nothing and wakes no worker.

-- name: items_temp
-- Dropped at commit; IF NOT EXISTS + TRUNCATE lets one transaction load twice.
CREATE TEMP TABLE IF NOT EXISTS recdb_load_items (
    item_id  bigint PRIMARY KEY,
    title    text NOT NULL,
    body     text,
    attrs    jsonb NOT NULL
) ON COMMIT DROP;
TRUNCATE recdb_load_items

-- name: items_merge
-- Upsert that leaves identical rows alone: an UPDATE of an unchanged row would still run
-- the statement trigger, and touching title/body/attrs would re-queue it for encoding.
INSERT INTO recdb.items AS i (item_id, title, body, attrs)
SELECT t.item_id, t.title, t.body, t.attrs
FROM recdb_load_items t
ORDER BY t.item_id
ON CONFLICT (item_id) DO UPDATE
SET title = excluded.title, body = excluded.body, attrs = excluded.attrs
WHERE (i.title, i.body, i.attrs) IS DISTINCT FROM (excluded.title, excluded.body, excluded.attrs)
RETURNING (xmax = 0) AS inserted

-- name: events_temp
CREATE TEMP TABLE IF NOT EXISTS recdb_load_events (
    row_no       bigint NOT NULL,  -- the input's order: ties on time keep it
    user_id      bigint NOT NULL,
    item_id      bigint NOT NULL,
    kind         text NOT NULL,
    value        real,
    occurred_at  timestamptz NOT NULL
) ON COMMIT DROP;
TRUNCATE recdb_load_events

-- name: events_merge
-- An event already there (same user, item, kind and time) is skipped, as is a repeat
-- inside the file. Rows go in chronological order, ties in the input's order, so event_id
-- order (the watermark, "recent history" in rerank(), the sequences `recdb train` learns
-- from) follows occurred_at and, within a second, the order the input lists them in.
-- Events on unknown items are dropped here (and counted by the caller) instead of failing
-- the whole load on the foreign key.
INSERT INTO recdb.events (user_id, item_id, kind, value, occurred_at)
SELECT t.user_id, t.item_id, t.kind, t.value, t.occurred_at
FROM (
    SELECT DISTINCT ON (user_id, item_id, kind, occurred_at) *
    FROM recdb_load_events
    ORDER BY user_id, item_id, kind, occurred_at, row_no
) t
WHERE EXISTS (SELECT 1 FROM recdb.items i WHERE i.item_id = t.item_id)
  AND NOT EXISTS (
    SELECT 1 FROM recdb.events e
    WHERE e.user_id = t.user_id AND e.item_id = t.item_id
      AND e.kind = t.kind AND e.occurred_at = t.occurred_at)
ORDER BY t.occurred_at, t.row_no

-- name: events_unknown_items
SELECT count(*) FROM recdb_load_events t
WHERE NOT EXISTS (SELECT 1 FROM recdb.items i WHERE i.item_id = t.item_id)

-- name: refresh_popularity_after_load
SELECT recdb.refresh_popularity()

-- name: items_table_exists
SELECT to_regclass('recdb.items') IS NOT NULL
