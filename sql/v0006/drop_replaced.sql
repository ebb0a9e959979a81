-- recdb 0006: what the new definitions replace.
-- rank_pool() takes the co-visitation votes rerank() counted once.
DROP FUNCTION recdb.rank_pool(bigint, @VEC@.vector, bigint[], integer, integer);
-- The fold no longer compares event ids with the watermark, so nothing needs the xid
-- taken before the event id: the column default takes it.
DROP TRIGGER events_take_xid ON recdb.events;
DROP FUNCTION recdb.events_take_xid();
