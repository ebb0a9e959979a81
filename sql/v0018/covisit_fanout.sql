-- recdb 0018: a co-visitation vote reads a bounded range.

-- A user's recent item votes for the items whose lists hold it (recdb.covisit_votes):
-- at most covisit_fanout of them, those it is most similar to. A popular item is held by
-- thousands of lists at 10^6 items, so without a bound a heavy user's votes read as many
-- rows per call (2,097 for one item at 3 x 10^6 events).
ALTER TABLE recdb.settings ADD COLUMN covisit_fanout integer NOT NULL DEFAULT 100
    CONSTRAINT settings_covisit_fanout_range CHECK (covisit_fanout BETWEEN 1 AND 100000);

-- The votes read an item's holders best first: (neighbor_id, score DESC, item_id), every
-- column in the key, so the read is index-only and stops after covisit_fanout rows. It
-- also serves the maintenance's "where is this item listed"; the key becomes
-- (item_id, neighbor_id), which serves "this item's list" in place of
-- item_neighbors_item: still two indexes to write.
ALTER TABLE recdb.item_neighbors DROP CONSTRAINT item_neighbors_pkey,
    ADD CONSTRAINT item_neighbors_pkey PRIMARY KEY (item_id, neighbor_id);
DROP INDEX recdb.item_neighbors_item;
CREATE INDEX item_neighbors_votes ON recdb.item_neighbors (neighbor_id, score DESC, item_id);
