-- recdb 0010 downgrade, first part (before the 0009 functions are restored): the 0009
-- table, with what the view serves now.
ALTER VIEW recdb.item_popularity RENAME TO item_popularity_0010;
CREATE TABLE recdb.item_popularity (
    item_id    bigint PRIMARY KEY REFERENCES recdb.items (item_id) ON DELETE CASCADE,
    raw        double precision NOT NULL,
    score      double precision NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX item_popularity_score ON recdb.item_popularity (score DESC, item_id);
INSERT INTO recdb.item_popularity (item_id, raw, score, refreshed_at)
SELECT v.item_id, v.raw, v.score, v.refreshed_at FROM recdb.item_popularity_0010 v;
DROP VIEW recdb.item_popularity_0010;
GRANT SELECT ON recdb.item_popularity TO recdb_app, recdb_worker, recdb_readonly;
GRANT SELECT, INSERT, UPDATE, DELETE ON recdb.item_popularity TO recdb_worker;
