DROP FUNCTION recdb.list_new_items(bigint[]);
