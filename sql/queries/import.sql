-- Named queries of `recdb import` (recdb/importer/). Each chunk of a file is COPYed as
-- text into a temp staging table, checked set-based into a second one (every row gets a
-- reason or none), and its good rows are written with ONE statement, in one transaction
-- with its ledger row (recdb.imports). The checks mirror what the tables and the events
-- trigger (sql/functions/010_queues.sql, events_changed) refuse, so no row of the file
-- can abort the import; the reason codes are described in recdb/importer/reasons.py.
-- Text is parsed here, by PostgreSQL's own input functions (pg_input_is_valid, 16+):
-- a value is accepted exactly when an INSERT of the same literal would accept it (and a
-- time may also be Unix seconds).

-- name: import_server_version
SELECT current_setting('server_version_num')::integer

-- name: import_ledger_exists
SELECT to_regclass('recdb.imports') IS NOT NULL

-- name: import_lock_wait
-- Session lock per source, so two runs of one file never load the same chunks. Taken
-- inside a transaction only to bound the wait (lock_timeout): a session-level lock
-- outlives it. A killed run's server process lets go as soon as it notices its client
-- is gone, within this wait; a live one makes the second run fail.
SELECT set_config('lock_timeout', %(wait)s, true)

-- name: import_lock_take
SELECT pg_advisory_lock(hashtextextended('recdb.imports:' || %(source)s, 0))

-- name: import_unlock
SELECT pg_advisory_unlock(hashtextextended('recdb.imports:' || %(source)s, 0))

-- name: import_done
-- What earlier runs of this source recorded; chunks commit in order under the lock, so
-- rows 1 .. next_row - 1 are done.
SELECT coalesce(max(first_row + row_count), 1) AS next_row,
       coalesce(sum(row_count), 0) AS row_count
FROM recdb.imports
WHERE source = %(source)s

-- name: import_record_chunk
INSERT INTO recdb.imports (source, first_row, row_count, target, file_name, loaded, rejected)
VALUES (%(source)s, %(first_row)s, %(row_count)s, %(target)s, %(file_name)s, %(loaded)s,
        %(rejected)s)

-- name: import_utc
-- A time without a zone in the file means UTC, whatever the role's TimeZone.
SET LOCAL TimeZone = 'UTC'

-- name: import_items_tables
-- Session temp tables, emptied at every commit (one chunk per transaction).
CREATE TEMP TABLE IF NOT EXISTS recdb_import_items (
    row_no     bigint NOT NULL,
    item_id    text,
    title      text,
    body       text,
    attrs      text,
    available  text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS recdb_import_items_checked (
    row_no     bigint NOT NULL,
    item_id    bigint,
    title      text,
    body       text,
    attrs      jsonb,
    available  boolean,
    reason     text
) ON COMMIT DELETE ROWS

-- name: import_items_copy
COPY recdb_import_items (row_no, item_id, title, body, attrs, available) FROM STDIN

-- name: import_items_check
-- A title is required for a new item, and whenever the file maps one.
INSERT INTO recdb_import_items_checked
SELECT s.row_no, t.item_id, s.title, s.body, t.attrs, t.available,
       CASE
           WHEN s.item_id IS NULL THEN 'missing_id'
           WHEN t.item_id IS NULL THEN 'bad_id'
           WHEN s.title IS NULL
                AND (%(set_title)s
                     OR NOT EXISTS (SELECT 1 FROM recdb.items i WHERE i.item_id = t.item_id))
               THEN 'missing_title'
           WHEN s.attrs IS NOT NULL AND t.attrs IS NULL THEN 'bad_attrs'
           WHEN s.available IS NOT NULL AND t.available IS NULL THEN 'bad_available'
       END
FROM recdb_import_items s
CROSS JOIN LATERAL (
    SELECT CASE WHEN pg_input_is_valid(s.item_id, 'bigint') THEN s.item_id::bigint END
               AS item_id,
           CASE WHEN pg_input_is_valid(s.attrs, 'jsonb') THEN
               CASE WHEN jsonb_typeof(s.attrs::jsonb) = 'object' THEN s.attrs::jsonb END
           END AS attrs,
           CASE WHEN pg_input_is_valid(s.available, 'boolean') THEN s.available::boolean END
               AS available
) t

-- name: import_items_upsert
-- The last row of the chunk for an item wins (as a later chunk's would). Only the
-- columns the file maps are written, and only when one differs: an unchanged item is
-- not touched, so it is not re-queued for encoding.
INSERT INTO recdb.items AS i (item_id, title, body, attrs, available)
SELECT c.item_id, coalesce(c.title, e.title), c.body, coalesce(c.attrs, '{}'::jsonb),
       coalesce(c.available, true)
FROM (
    SELECT DISTINCT ON (item_id) *
    FROM recdb_import_items_checked
    WHERE reason IS NULL
    ORDER BY item_id, row_no DESC
) c
LEFT JOIN recdb.items e ON e.item_id = c.item_id
ORDER BY c.item_id
ON CONFLICT (item_id) DO UPDATE
SET title = CASE WHEN %(set_title)s THEN excluded.title ELSE i.title END,
    body = CASE WHEN %(set_body)s THEN excluded.body ELSE i.body END,
    attrs = CASE WHEN %(set_attrs)s THEN excluded.attrs ELSE i.attrs END,
    available = CASE WHEN %(set_available)s THEN excluded.available ELSE i.available END
WHERE (%(set_title)s AND i.title IS DISTINCT FROM excluded.title)
   OR (%(set_body)s AND i.body IS DISTINCT FROM excluded.body)
   OR (%(set_attrs)s AND i.attrs IS DISTINCT FROM excluded.attrs)
   OR (%(set_available)s AND i.available IS DISTINCT FROM excluded.available)
RETURNING (xmax = 0) AS inserted

-- name: import_items_rejects
SELECT row_no, reason FROM recdb_import_items_checked WHERE reason IS NOT NULL ORDER BY row_no

-- name: import_events_tables
CREATE TEMP TABLE IF NOT EXISTS recdb_import_events (
    row_no       bigint NOT NULL,
    user_id      text,
    item_id      text,
    kind         text,
    value        text,
    occurred_at  text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS recdb_import_events_checked (
    row_no       bigint NOT NULL,
    user_id      bigint,
    item_id      bigint,
    kind         text,
    value        real,
    occurred_at  timestamptz,
    reason       text
) ON COMMIT DELETE ROWS

-- name: import_events_copy
COPY recdb_import_events (row_no, user_id, item_id, kind, value, occurred_at) FROM STDIN

-- name: import_events_check
-- What recdb.events refuses, in order: NOT NULL ids, the item and kind foreign keys,
-- events_value_finite, then events_changed(): a valued kind needs a value inside
-- [min_value, max_value]; occurred_at finite and at most now() + max_future_skew (now()
-- is this transaction's, the trigger's too). A time is ISO 8601 (what timestamptz
-- reads) or Unix seconds. A file without a time column gets now(), the column's
-- default (has_time false).
INSERT INTO recdb_import_events_checked
SELECT s.row_no, t.user_id, t.item_id, s.kind, t.value,
       CASE WHEN %(has_time)s THEN t.occurred_at ELSE now() END,
       CASE
           WHEN s.user_id IS NULL OR s.item_id IS NULL THEN 'missing_id'
           WHEN t.user_id IS NULL OR t.item_id IS NULL THEN 'bad_id'
           WHEN k.kind IS NULL THEN 'bad_kind'
           WHEN NOT EXISTS (SELECT 1 FROM recdb.items i WHERE i.item_id = t.item_id)
               THEN 'unknown_item'
           WHEN s.value IS NOT NULL AND t.value IS NULL THEN 'bad_value'
           WHEN k.value_center IS NOT NULL AND t.value IS NULL THEN 'missing_value'
           WHEN t.value < k.min_value OR t.value > k.max_value THEN 'value_out_of_range'
           WHEN NOT %(has_time)s THEN NULL
           WHEN s.occurred_at IS NULL THEN 'missing_time'
           WHEN t.occurred_at IS NULL OR NOT isfinite(t.occurred_at) THEN 'bad_time'
           WHEN t.occurred_at > now() + st.max_future_skew THEN 'future_time'
       END
FROM recdb_import_events s
CROSS JOIN LATERAL (
    SELECT CASE WHEN pg_input_is_valid(s.user_id, 'bigint') THEN s.user_id::bigint END
               AS user_id,
           CASE WHEN pg_input_is_valid(s.item_id, 'bigint') THEN s.item_id::bigint END
               AS item_id,
           CASE WHEN pg_input_is_valid(s.value, 'real') THEN
               CASE WHEN s.value::real::float8 <> 'NaN'::float8
                         AND abs(s.value::real) <> 'Infinity'::real
                    THEN s.value::real END
           END AS value,
           -- Up to 11 digits: seconds up to the year 5138 (larger is not a time in
           -- seconds: milliseconds, say; to_timestamp() would raise past year 294276).
           CASE WHEN s.occurred_at ~ '^\s*[0-9]{1,11}(\.[0-9]*)?\s*$'
                    THEN to_timestamp(s.occurred_at::float8)
                WHEN pg_input_is_valid(s.occurred_at, 'timestamptz')
                    THEN s.occurred_at::timestamptz
           END AS occurred_at
) t
LEFT JOIN recdb.event_kinds k ON k.kind = s.kind
CROSS JOIN (SELECT max_future_skew FROM recdb.settings LIMIT 1) st

-- name: import_events_insert
-- One statement per chunk: the statement-level events trigger queues each user once.
-- Oldest first, so event ids follow time within a chunk.
INSERT INTO recdb.events (user_id, item_id, kind, value, occurred_at)
SELECT user_id, item_id, kind, value, occurred_at
FROM recdb_import_events_checked
WHERE reason IS NULL
ORDER BY occurred_at, row_no

-- name: import_events_rejects
SELECT row_no, reason FROM recdb_import_events_checked WHERE reason IS NOT NULL ORDER BY row_no

-- name: import_drop_tables
DROP TABLE IF EXISTS recdb_import_items, recdb_import_items_checked, recdb_import_events,
    recdb_import_events_checked
