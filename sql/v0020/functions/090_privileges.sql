-- recdb functions, last: who may call what. Default deny: no recdb function is
-- executable by PUBLIC (this also covers a function added to an earlier file), then
-- exactly these grants. Table privileges and the roles themselves: revision 0002
-- (sql/v0002/roles.sql) and 0003.
--
-- Functions run with their caller's rights (SECURITY INVOKER) except the two queue
-- triggers (010_queues.sql). Granted here:
--   callers of the ranking functions (app, worker, readonly): rerank(), similar_items()
--     and what they call: user_vector(), the rank_* internals, check_k(),
--     event_weight(), scale(), recent_positive_items();
--   the worker, besides: refresh_popularity() and what it calls (popularity_step(),
--     popularity_normalise(), popularity_rebase(), popularity_weights()),
--     rebuild_popularity() (full rebuild), refresh_neighbors() (full rebuild),
--     sync_covisitation() and what it calls (covisit_apply(), covisit_relist()), and
--     enqueue_items()
--     (it may write the item queue anyway; the app role queues only through the trigger);
--   the worker, for maintenance: record_maintenance(), apply_retention() (DEFINER);
--   the app: forget_user() (DEFINER: erasure without DELETE on users or queues);
--   the worker, for the content prior: list_new_items() (the items trigger calls it too);
--   nobody: activate_model(), rebuild_item_vectors() and their helpers (the DBA's),
--     sync_item_vectors() (the items trigger's), the trigger functions.
-- The public.rerank()/public.similar_items() wrappers stay executable by PUBLIC; calling
-- them still needs EXECUTE on the recdb function they wrap.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA recdb FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    recdb.rerank(bigint, integer, bigint[], jsonb, boolean),
    recdb.similar_items(bigint, integer),
    recdb.user_vector(bigint),
    recdb.rank_pool(bigint, @VEC@.vector, bigint[], integer, integer, bigint[],
                    double precision[]),
    recdb.covisit_votes(bigint, integer, bigint[]),
    recdb.rank_cold(bigint[], integer, integer),
    recdb.check_k(text, integer),
    recdb.event_weight(real, interval, real, real, real, interval),
    recdb.scale(@VEC@.vector, double precision),
    recdb.recent_positive_items(bigint, integer)
    TO recdb_app, recdb_worker, recdb_readonly;
GRANT EXECUTE ON FUNCTION
    recdb.refresh_popularity(), recdb.rebuild_popularity(),
    recdb.popularity_step(pg_snapshot, pg_snapshot, double precision, double precision),
    recdb.popularity_normalise(double precision),
    recdb.popularity_rebase(double precision, double precision), recdb.popularity_weights(),
    recdb.refresh_neighbors(), recdb.enqueue_items(bigint[]),
    recdb.sync_covisitation(integer), recdb.covisit_apply(bigint[]),
    recdb.covisit_relist(bigint[]),
    recdb.record_maintenance(text, interval, bigint), recdb.apply_retention(integer),
    recdb.list_new_items(bigint[])
    TO recdb_worker;
-- Erasure on request is the application's call (it knows who asked).
GRANT EXECUTE ON FUNCTION recdb.forget_user(bigint) TO recdb_app;
