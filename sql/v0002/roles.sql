-- recdb 0002: least-privilege group roles. They are NOLOGIN; a DBA grants them to login
-- roles:  CREATE ROLE shop_app LOGIN PASSWORD '...' IN ROLE recdb_app;
--   recdb_app       write items and events, call rerank()/similar_items(); nothing else writable
--   recdb_worker    claim queues, write embeddings, user vectors, popularity and heartbeats
--   recdb_readonly  read tables and call the ranking functions
-- Roles are cluster-wide: created if missing, shared by every database using recdb.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['recdb_app', 'recdb_worker', 'recdb_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXECUTE format('COMMENT ON ROLE %I IS %L', r, 'created by recdb');
        END IF;
    END LOOP;
END $$;

-- The enqueue triggers run with their owner's rights: writers must be able to queue work
-- without being able to read or edit the queues. Their search_path is pinned (0001).
ALTER FUNCTION recdb.items_changed() SECURITY DEFINER;
ALTER FUNCTION recdb.events_changed() SECURITY DEFINER;

GRANT USAGE ON SCHEMA recdb TO recdb_app, recdb_worker, recdb_readonly;

-- Everyone who ranks reads what rerank() reads (functions are SECURITY INVOKER).
GRANT SELECT ON recdb.items, recdb.events, recdb.event_kinds, recdb.users, recdb.settings,
                recdb.item_popularity, recdb.item_neighbors
    TO recdb_app, recdb_worker, recdb_readonly;

-- The application: new items, content changes, events.
GRANT INSERT ON recdb.items, recdb.events TO recdb_app;
GRANT UPDATE (title, body, attrs, available) ON recdb.items TO recdb_app;
GRANT DELETE ON recdb.events TO recdb_app;

-- The worker: vectors, queues, heartbeats, popularity.
GRANT UPDATE (embedding, embedded_at, encoder) ON recdb.items TO recdb_worker;
GRANT INSERT, UPDATE ON recdb.users TO recdb_worker;
GRANT SELECT, UPDATE, DELETE ON recdb.item_queue, recdb.user_queue TO recdb_worker;
GRANT INSERT ON recdb.item_queue, recdb.user_queue TO recdb_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON recdb.workers, recdb.item_popularity,
    recdb.item_neighbors TO recdb_worker;

-- Read-only: results and operational state (recdb status).
GRANT SELECT ON recdb.item_queue, recdb.user_queue, recdb.workers TO recdb_readonly;

-- Functions: only the ranking entry points for callers; popularity refresh for workers.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA recdb FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    recdb.rerank(bigint, integer, bigint[], jsonb, boolean),
    recdb.similar_items(bigint, integer),
    recdb.user_vector(bigint),
    recdb.rank_pool(bigint, vector, bigint[], integer, integer),
    recdb.rank_cold(bigint[], integer, integer),
    recdb.check_k(text, integer),
    recdb.event_weight(real, interval, real, real, real, interval),
    recdb.scale(vector, double precision)
    TO recdb_app, recdb_worker, recdb_readonly;
GRANT EXECUTE ON FUNCTION recdb.refresh_popularity(), recdb.refresh_neighbors() TO recdb_worker;
