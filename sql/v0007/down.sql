-- recdb 0007 downgrade (the 0006 function definitions are restored by the revision first).
DROP FUNCTION recdb.sync_covisitation(integer);
DROP FUNCTION recdb.covisit_apply(bigint[]);
DROP FUNCTION recdb.covisit_relist(bigint[]);
DROP INDEX recdb.item_neighbors_item;
DROP TABLE recdb.covisit_state, recdb.covisit_pairs, recdb.covisit_counts,
    recdb.covisit_user_items, recdb.covisit_queue, recdb.covisit_runner_up;
