-- recdb 0010 downgrade, second part (the 0009 functions are back): what 0010 added.
DROP TRIGGER events_truncated ON recdb.events;
DROP FUNCTION recdb.events_truncated();
DROP FUNCTION recdb.rebuild_popularity();
DROP FUNCTION recdb.popularity_step(pg_snapshot, pg_snapshot, double precision, double precision);
DROP FUNCTION recdb.popularity_normalise(double precision);
DROP FUNCTION recdb.popularity_rebase(double precision, double precision);
DROP FUNCTION recdb.popularity_weights();
DROP TABLE recdb.popularity_changes, recdb.popularity_state, recdb.popularity;
DROP INDEX recdb.events_txid;
-- The co-visitation reserve; 0009 keeps its runner-up one rank lower: rebuild next step.
DROP TABLE recdb.covisit_reserve;
DELETE FROM recdb.covisit_state;
