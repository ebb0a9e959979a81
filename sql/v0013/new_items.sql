-- Revision 0013: recdb.new_items is kept by the items trigger from now on; start it from
-- a rebuild (the last maintenance run's list misses the items encoded since), through
-- the function this revision's functions define.
DELETE FROM recdb.new_items;
SELECT recdb.list_new_items(ARRAY(
    SELECT i.item_id FROM recdb.items i WHERE i.embedding IS NOT NULL ORDER BY i.item_id));
