ALTER TABLE recdb.item_neighbors RESET (
    autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_insert_scale_factor
);
ALTER TABLE recdb.covisit_pairs SET LOGGED;
ALTER TABLE recdb.covisit_user_items SET LOGGED;
ALTER TABLE recdb.covisit_reserve SET LOGGED;
ALTER TABLE recdb.covisit_runner_up SET LOGGED;
ALTER TABLE recdb.covisit_queue SET LOGGED;
ALTER TABLE recdb.covisit_state SET LOGGED;
