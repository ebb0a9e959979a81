-- recdb 0008 downgrade (the 0007 function definitions are restored by the revision first).
ALTER TABLE recdb.settings DROP COLUMN content_prior_weight, DROP COLUMN explore_share,
    DROP COLUMN explore_after;
DROP TABLE recdb.new_items;
DROP TABLE recdb.content_prior, recdb.serving, recdb.item_next;
ALTER TABLE recdb.models DROP COLUMN fold_weights;
