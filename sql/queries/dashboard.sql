-- Named queries of `recdb serve` (recdb/dashboard/). They run as recdb_readonly in
-- read-only transactions, and each is bounded (a LIMIT, or a primary-key lookup or
-- range), so a page costs the same on a 10^6-item catalogue as on MovieLens-100K. The
-- status page also reads the bounded queries of status.sql and metrics.sql, the model
-- page list_models (models.sql, which never selects the weights).

-- name: dashboard_session
-- Once per pooled connection: act as recdb_readonly (the login must be a member of it,
-- or a superuser) with a statement timeout, so no page can write or hang.
SELECT set_config('role', 'recdb_readonly', false),
       set_config('statement_timeout', %(timeout_ms)s, false)

-- name: dashboard_whoami
-- What the footer shows: the role in effect and whether the transaction is read-only.
SELECT current_user AS role, session_user AS login, current_database() AS database,
       current_setting('transaction_read_only') = 'on' AS read_only

-- name: dashboard_estimates
-- Table sizes from the planner's statistics (kept by ANALYZE / autovacuum; -1 before the
-- first): an exact count would scan a 10^6-row table on every page load.
SELECT c.relname AS name, c.reltuples::bigint AS estimate
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'recdb' AND c.relname IN ('items', 'events', 'users') AND c.relkind = 'r'
ORDER BY c.relname

-- name: dashboard_user
-- Whether any event names the user (a primary-key probe) and their stored vector's
-- bookkeeping (NULLs: not encoded yet).
SELECT EXISTS (SELECT 1 FROM recdb.events WHERE user_id = %(user_id)s) AS has_events,
       u.user_id IS NOT NULL AS stored, u.embedding IS NOT NULL AS embedded, u.encoder,
       u.encoded_at, u.encoded_through, u.event_count, u.last_event_at
FROM (SELECT 1) AS one
LEFT JOIN recdb.users u ON u.user_id = %(user_id)s

-- name: dashboard_user_events
-- The user's newest events, newest first (the primary key (user_id, event_id) backwards).
SELECT e.event_id, e.item_id, i.title, e.kind, e.value, e.occurred_at
FROM recdb.events e
LEFT JOIN recdb.items i ON i.item_id = e.item_id
WHERE e.user_id = %(user_id)s
ORDER BY e.event_id DESC
LIMIT %(limit)s

-- name: dashboard_rerank
-- Exactly what the application gets from rerank(user, k), in its order, with titles.
SELECT r.rank, r.item_id, r.score, r.because_item_id, r.reason, r.fresh_events,
       i.title, b.title AS because_title
FROM recdb.rerank(%(user_id)s, k => %(k)s) r
LEFT JOIN recdb.items i ON i.item_id = r.item_id
LEFT JOIN recdb.items b ON b.item_id = r.because_item_id
ORDER BY r.rank

-- name: dashboard_item
-- One item by primary key; long texts are cut to %(max_chars)s characters for display.
SELECT i.item_id, i.title, left(i.body, %(max_chars)s) AS body, length(i.body) AS body_chars,
       left(jsonb_pretty(i.attrs), %(max_chars)s) AS attrs, i.available, i.created_at,
       i.updated_at, i.embedded_at, i.encoder, i.embedding IS NOT NULL AS embedded,
       p.score AS popularity
FROM recdb.items i
LEFT JOIN recdb.item_popularity p ON p.item_id = i.item_id
WHERE i.item_id = %(item_id)s

-- name: dashboard_similar
-- similar_items(item, k) in its order, with titles.
SELECT s.rank, s.item_id, s.score, i.title
FROM recdb.similar_items(%(item_id)s, %(k)s) s
LEFT JOIN recdb.items i ON i.item_id = s.item_id
ORDER BY s.rank
