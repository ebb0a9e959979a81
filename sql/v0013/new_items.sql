-- Revision 0013: recdb.new_items is kept by the items trigger from now on; start it from
-- a rebuild (the last maintenance run's list misses the items encoded since).
DELETE FROM recdb.new_items;
INSERT INTO recdb.new_items (item_id, prior)
SELECT i.item_id,
       coalesce(least(1.0, greatest(0.0, c.bias - (i.embedding OPERATOR(@VEC@.<#>) c.weights))), 0)
FROM recdb.items i
LEFT JOIN recdb.content_prior c
       ON c.model_id IS NOT DISTINCT FROM (SELECT sv.model_id FROM recdb.serving sv)
WHERE i.embedding IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM recdb.popularity p WHERE p.item_id = i.item_id);
