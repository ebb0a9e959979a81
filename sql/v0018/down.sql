-- recdb 0018 downgrade (the 0016 function definitions are restored by the revision first).
DROP INDEX recdb.item_neighbors_votes;
ALTER TABLE recdb.item_neighbors DROP CONSTRAINT item_neighbors_pkey,
    ADD CONSTRAINT item_neighbors_pkey PRIMARY KEY (neighbor_id, item_id) INCLUDE (score);
CREATE INDEX item_neighbors_item ON recdb.item_neighbors (item_id);
ALTER TABLE recdb.settings DROP COLUMN covisit_fanout;
