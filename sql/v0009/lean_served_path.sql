-- recdb 0009: the served path reads less.

-- Catalogues of at most exact_scan_below items are searched exactly (every item's
-- distance, then a top-N sort) instead of through the HNSW index: below a few thousand
-- items that is cheaper than walking the graph at rerank()'s ef_search, and exact.
-- Decided per call from the planner's row count of recdb.items (pg_class.reltuples,
-- kept by ANALYZE/autovacuum; a table never analysed counts as large). 0: always HNSW.
ALTER TABLE recdb.settings ADD COLUMN exact_scan_below integer NOT NULL DEFAULT 2000
    CONSTRAINT settings_exact_scan_below_range
    CHECK (exact_scan_below BETWEEN 0 AND 1000000);

-- Co-visitation votes read a user's recent items' neighbour lists (covisit_votes): with
-- the score in the key's index, each list is an index-only range, no heap visit per row.
ALTER TABLE recdb.item_neighbors DROP CONSTRAINT item_neighbors_pkey,
    ADD CONSTRAINT item_neighbors_pkey PRIMARY KEY (neighbor_id, item_id) INCLUDE (score);
