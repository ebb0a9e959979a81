-- recdb 0006 downgrade. The 0005 function definitions (events_take_xid and its trigger
-- included) are restored by the revision first.
DROP FUNCTION recdb.rank_pool(bigint, @VEC@.vector, bigint[], integer, integer, bigint[],
                              double precision[]);
DROP FUNCTION recdb.covisit_votes(bigint, integer);
DROP FUNCTION recdb.refuse_event(text, real, timestamptz, real, real, interval, boolean);
ALTER TABLE recdb.items ALTER COLUMN embedding SET STORAGE EXTERNAL;
DROP INDEX recdb.events_user_txid;
