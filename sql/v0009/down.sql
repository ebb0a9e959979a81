-- recdb 0009 downgrade (the 0008 function definitions are restored by the revision first).
ALTER TABLE recdb.item_neighbors DROP CONSTRAINT item_neighbors_pkey,
    ADD CONSTRAINT item_neighbors_pkey PRIMARY KEY (neighbor_id, item_id);
ALTER TABLE recdb.settings DROP COLUMN exact_scan_below;
