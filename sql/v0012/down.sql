ALTER TABLE recdb.item_neighbors RESET (
    autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_insert_scale_factor
);
