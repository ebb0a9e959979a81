-- rerank()'s co-visitation votes read item_neighbors through its key only (an index-only
-- scan, recdb.covisit_votes), which skips the heap only on pages the visibility map marks
-- all-visible. Every maintenance step rewrites a few lists and clears those bits; at the
-- default thresholds (20% of the rows dead) autovacuum left a 10^6-event shop's table
-- uncovered for hours: a heavy user's votes fetched 2,231 heap rows, 10.8 ms, where a
-- vacuumed table took 7.2 ms (VACUUM itself: 0.2 s). 1% keeps the bits set.
ALTER TABLE recdb.item_neighbors SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.01
);
