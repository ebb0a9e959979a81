-- The searched item vectors move beside recdb.items, one partition per vector space
-- (0: the text model's vectors; N: model N's), each with its own HNSW index. A model is
-- activated by building its partition in bulk (COPY, then one index build) and attaching
-- it (recdb.activate_model()), instead of rewriting every row through the live index.
-- items.embedding stays the served vector every other read uses; it has no HNSW index
-- any more, so rewriting it in bulk costs what a heap update costs. The searched copy
-- carries what rerank()'s search filters on (available, attrs, as in items), so the
-- search stays one table the planner can read by either index, as before.
CREATE TABLE recdb.item_vectors (
    space      bigint NOT NULL,
    item_id    bigint NOT NULL,
    embedding  vector(@DIM@) NOT NULL,
    available  boolean NOT NULL,
    attrs      jsonb NOT NULL,
    PRIMARY KEY (space, item_id)
) PARTITION BY LIST (space);
CREATE INDEX item_vectors_hnsw ON recdb.item_vectors
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);
CREATE INDEX item_vectors_attrs ON recdb.item_vectors USING gin (attrs jsonb_path_ops);
-- Written only through recdb.items (its trigger copies the rows here) and by
-- recdb.activate_model().
GRANT SELECT ON recdb.item_vectors TO recdb_app, recdb_worker, recdb_readonly;

-- One partition is attached at a time: the served space's (rerank() searches the parent).
-- The served space's partition, filled from items.embedding, indexed once, attached.
DO $$
DECLARE
    sp bigint := coalesce((SELECT s.model_id FROM recdb.serving s), 0);
    part text := 'item_vectors_' || sp;
BEGIN
    EXECUTE format('CREATE TABLE recdb.%I (LIKE recdb.item_vectors INCLUDING DEFAULTS '
                   'INCLUDING STORAGE, CONSTRAINT %I CHECK (space = %s))',
                   part, part || '_space', sp);
    EXECUTE format('ALTER TABLE recdb.%I ALTER COLUMN embedding SET STORAGE MAIN', part);
    EXECUTE format('INSERT INTO recdb.%I (space, item_id, embedding, available, attrs) '
                   'SELECT %s, i.item_id, i.embedding, i.available, i.attrs FROM recdb.items i '
                   'WHERE i.embedding IS NOT NULL ORDER BY i.item_id', part, sp);
    EXECUTE format('ALTER TABLE recdb.%I ADD PRIMARY KEY (space, item_id)', part);
    EXECUTE format('CREATE INDEX %I ON recdb.%I USING hnsw (embedding vector_cosine_ops) '
                   'WITH (m = 16, ef_construction = 200)', part || '_hnsw', part);
    EXECUTE format('CREATE INDEX %I ON recdb.%I USING gin (attrs jsonb_path_ops)',
                   part || '_attrs', part);
    EXECUTE format('ANALYZE recdb.%I', part);
    EXECUTE format('ALTER TABLE recdb.item_vectors ATTACH PARTITION recdb.%I FOR VALUES IN (%s)',
                   part, sp);
END $$;

DROP INDEX recdb.items_embedding_hnsw;

-- A model's vectors while it is staged (recdb.sequence.activation writes them in chunks,
-- recdb.build_vector_space() builds its partition from them), with what
-- recdb.activate_model() needs at the switch: the text each vector was projected from
-- (an item whose text changed meanwhile is re-queued, not served stale) and the item's
-- "what follows" vector (recdb.item_next). Emptied by the switch.
CREATE TABLE recdb.staged_items (
    space      bigint NOT NULL,
    item_id    bigint NOT NULL,
    text_key   text,
    embedding  vector(@DIM@) NOT NULL,
    next       vector(@DIM@),
    PRIMARY KEY (space, item_id)
);
ALTER TABLE recdb.staged_items ALTER COLUMN embedding SET STORAGE MAIN,
                               ALTER COLUMN next SET STORAGE MAIN;
