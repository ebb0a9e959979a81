CREATE INDEX items_embedding_hnsw ON recdb.items
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);
DROP TABLE recdb.item_vectors, recdb.staged_items;
DO $$
DECLARE
    t text;
BEGIN
    -- Staged partitions never attached.
    FOR t IN SELECT c.relname FROM pg_class c
             WHERE c.relnamespace = 'recdb'::regnamespace AND c.relkind = 'r'
               AND c.relname ~ '^item_vectors_[0-9]+$' LOOP
        EXECUTE format('DROP TABLE recdb.%I', t);
    END LOOP;
END $$;
