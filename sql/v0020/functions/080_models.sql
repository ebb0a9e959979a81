-- recdb functions, layer 8: the model registry (recdb.models, revision 0003) and the
-- searched vectors of each model (recdb.item_vectors, revision 0016).
--
-- A model is served in one switch: its vectors are staged beside the served ones
-- (recdb.staged_items, filled in chunks by recdb.sequence.activation), built into a
-- partition in bulk (build_vector_space(): one insert and one HNSW build, not 10^6 index
-- insertions through a live graph), and activate_model() attaches it and switches
-- items.embedding, the fold operator and the users in one transaction. Until that
-- commit rerank() serves the old model whole; from it, the new one whole.

-- Build space p_space (0: text vectors, N: model N) from its rows in recdb.staged_items
-- as a standalone table, item_vectors_<space>_next: rows first, then the key and the
-- HNSW index (bulk builds). The session's maintenance_work_mem bounds the index build
-- (the graph should fit). Replaces an earlier build of the same space. Returns the rows.
CREATE OR REPLACE FUNCTION recdb.build_vector_space(p_space bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    part CONSTANT text := 'item_vectors_' || p_space || '_next';
    n integer;
BEGIN
    IF p_space IS NULL OR p_space < 0 THEN
        RAISE EXCEPTION 'build_vector_space: space must be 0 (text vectors) or a model_id, got %',
            coalesce(p_space::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS recdb.%I', part);
    EXECUTE format('CREATE TABLE recdb.%I (LIKE recdb.item_vectors INCLUDING DEFAULTS '
                   'INCLUDING STORAGE, CONSTRAINT %I CHECK (space = %s))',
                   part, part || '_space', p_space);
    EXECUTE format('ALTER TABLE recdb.%I ALTER COLUMN embedding SET STORAGE MAIN', part);
    -- available and attrs as of now; the switch's rewrite of items.embedding brings
    -- any later change over (the items trigger).
    EXECUTE format('INSERT INTO recdb.%I (space, item_id, embedding, available, attrs) '
                   'SELECT s.space, s.item_id, s.embedding, i.available, i.attrs '
                   'FROM recdb.staged_items s JOIN recdb.items i ON i.item_id = s.item_id '
                   'WHERE s.space = %s ORDER BY s.item_id', part, p_space);
    GET DIAGNOSTICS n = ROW_COUNT;
    EXECUTE format('ALTER TABLE recdb.%I ADD PRIMARY KEY (space, item_id)', part);
    EXECUTE format('CREATE INDEX %I ON recdb.%I USING hnsw (embedding @VEC@.vector_cosine_ops) '
                   'WITH (m = 16, ef_construction = 200)', part || '_hnsw', part);
    EXECUTE format('CREATE INDEX %I ON recdb.%I USING gin (attrs jsonb_path_ops)',
                   part || '_attrs', part);
    EXECUTE format('ANALYZE recdb.%I', part);
    RETURN n;
END $$;

-- Forget a staging of space p_space that will not be switched to: its rows and its
-- built table (an activation that failed or was refused).
CREATE OR REPLACE FUNCTION recdb.drop_staged_space(p_space bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM recdb.staged_items WHERE space = p_space;
    EXECUTE format('DROP TABLE IF EXISTS recdb.%I', 'item_vectors_' || p_space || '_next');
END $$;

-- Stage space p_space from what is stored, no model to run: the text vectors (space 0)
-- or, for the space served, items.embedding itself (rebuild_item_vectors()).
CREATE OR REPLACE FUNCTION recdb.stage_stored_vectors(p_space bigint, p_text boolean)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM recdb.staged_items WHERE space = p_space;
    INSERT INTO recdb.staged_items (space, item_id, text_key, embedding, next)
    SELECT p_space, i.item_id, i.text_key,
           CASE WHEN p_text THEN i.text_embedding ELSE i.embedding END, nx.embedding
    FROM recdb.items i
    LEFT JOIN recdb.item_next nx ON NOT p_text AND nx.item_id = i.item_id
    WHERE CASE WHEN p_text THEN i.text_embedding ELSE i.embedding END IS NOT NULL
    ORDER BY i.item_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Attach the built space p_space in place of the served one (dropped), inside the
-- caller's transaction, which holds the activation lock.
CREATE OR REPLACE FUNCTION recdb.swap_vector_space(p_space bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    part CONSTANT text := 'item_vectors_' || p_space;
    old text;
BEGIN
    IF to_regclass(format('recdb.%I', part || '_next_hnsw')) IS NULL THEN
        RAISE EXCEPTION 'swap_vector_space: space % is not built', p_space
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    FOR old IN SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
               WHERE h.inhparent = 'recdb.item_vectors'::regclass LOOP
        EXECUTE format('DROP TABLE recdb.%I', old);
    END LOOP;
    EXECUTE format('ALTER TABLE recdb.%I RENAME TO %I', part || '_next', part);
    EXECUTE format('ALTER INDEX recdb.%I RENAME TO %I', part || '_next_hnsw', part || '_hnsw');
    EXECUTE format('ALTER INDEX recdb.%I RENAME TO %I', part || '_next_attrs', part || '_attrs');
    EXECUTE format('ALTER TABLE recdb.%I RENAME CONSTRAINT %I TO %I',
                   part, part || '_next_space', part || '_space');
    EXECUTE format('ALTER TABLE recdb.item_vectors ATTACH PARTITION recdb.%I FOR VALUES IN (%s)',
                   part, p_space);
END $$;

-- Make p_model_id the served model (NULL: serve text vectors, no model), all in one
-- transaction: attach its built space (build_vector_space(); built here for NULL), set
-- items.embedding to the staged vector of every item whose text is still the one staged,
-- clear and re-queue the others (their text changed while the model was staged, or they
-- are newer), install the fold operator and item_next, and reset every user vector:
-- rerank() folds a user's newest events in the new space until the worker, woken for
-- every user, re-encodes them. No call mixes the two models. Returns the items re-queued.
-- The DBA's: no role is granted EXECUTE (090_privileges.sql).
CREATE OR REPLACE FUNCTION recdb.activate_model(p_model_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    sp CONSTANT bigint := coalesce(p_model_id, 0);
    enc CONSTANT text := CASE WHEN p_model_id IS NULL THEN 'text' ELSE 'sequence:' || p_model_id END;
    stale bigint[];
    lo bigint := -1;
    hi bigint;
BEGIN
    -- One activation at a time, and no worker batch across it: batches hold this lock
    -- shared from their first statement (the worker's batch_lock), so none writes a
    -- vector of the old model after the switch, and none holds rows the switch updates.
    PERFORM pg_advisory_xact_lock(hashtext('recdb.activate_model'));
    IF p_model_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM recdb.models WHERE model_id = p_model_id) THEN
        RAISE EXCEPTION 'activate_model: no model with model_id %', p_model_id
            USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE recdb.models SET active = false WHERE active AND model_id IS DISTINCT FROM p_model_id;
    UPDATE recdb.models SET active = true, activated_at = now()
    WHERE model_id = p_model_id AND NOT active;
    IF sp = coalesce((SELECT s.model_id FROM recdb.serving s), 0) THEN
        RETURN 0;  -- served already
    END IF;
    IF to_regclass(format('recdb.%I', 'item_vectors_' || sp || '_next_hnsw')) IS NULL THEN
        IF p_model_id IS NOT NULL THEN
            RAISE EXCEPTION 'activate_model: model % is not staged; run `recdb activate %` (it projects the catalogue in bulk, then calls this)',
                p_model_id, p_model_id USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        PERFORM recdb.stage_stored_vectors(0, true);
        PERFORM recdb.build_vector_space(0);
    END IF;

    -- What rerank() and the items trigger read of the served model, first.
    UPDATE recdb.serving SET model_id = p_model_id,
        fold_weights = (SELECT m.fold_weights FROM recdb.models m WHERE m.model_id = p_model_id);
    PERFORM recdb.swap_vector_space(sp);

    -- Items: the staged vector where the text is the one it was projected from, in chunks
    -- (the items trigger's transition tables stay small; its copy to the new partition
    -- finds the same vector there and writes nothing).
    LOOP
        SELECT max(c.item_id) INTO hi FROM (
            SELECT s.item_id FROM recdb.staged_items s
            WHERE s.space = sp AND s.item_id > lo ORDER BY s.item_id LIMIT 10000) c;
        EXIT WHEN hi IS NULL;
        UPDATE recdb.items i
        SET embedding = s.embedding, encoder = enc, embedded_at = now()
        FROM recdb.staged_items s
        WHERE s.space = sp AND s.item_id > lo AND s.item_id <= hi AND i.item_id = s.item_id
          AND i.text_key IS NOT DISTINCT FROM s.text_key;
        lo := hi;
    END LOOP;
    -- The rest hold a vector of the old model: cleared (the trigger drops them from the
    -- partition) and re-queued.
    WITH cleared AS (
        UPDATE recdb.items i SET embedding = NULL, encoder = NULL, embedded_at = NULL
        WHERE i.embedding IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM recdb.staged_items s
                          WHERE s.space = sp AND s.item_id = i.item_id
                            AND s.text_key IS NOT DISTINCT FROM i.text_key)
        RETURNING i.item_id)
    SELECT coalesce(array_agg(c.item_id ORDER BY c.item_id), '{}') INTO stale FROM cleared c;
    DELETE FROM recdb.item_next;
    INSERT INTO recdb.item_next (item_id, model_id, embedding)
    SELECT s.item_id, p_model_id, s.next
    FROM recdb.staged_items s JOIN recdb.items i ON i.item_id = s.item_id
    WHERE p_model_id IS NOT NULL AND s.space = sp AND s.next IS NOT NULL
      AND i.embedding IS NOT NULL
    ORDER BY s.item_id;
    DELETE FROM recdb.staged_items WHERE space = sp;

    -- Users: their stored vectors are of the old model. Cleared with their watermarks, so
    -- rerank() folds each user's newest events in the new space; all queued.
    UPDATE recdb.users
    SET embedding = NULL, norm = 0, encoded_through = 0, encoded_snapshot = NULL
    WHERE embedding IS NOT NULL OR encoded_through <> 0;
    INSERT INTO recdb.user_queue (user_id) SELECT u.user_id FROM recdb.users u ORDER BY u.user_id;

    PERFORM recdb.enqueue_items(stale);
    PERFORM pg_catalog.pg_notify('recdb_work', 'model');
    RETURN cardinality(stale);
END $$;

-- Rebuild the served space's partition from items.embedding in bulk, and swap it in:
-- after a bulk load of vectors, or to compact an index grown by many rewrites. Worker
-- batches wait while it builds (it holds the activation lock). The DBA's.
CREATE OR REPLACE FUNCTION recdb.rebuild_item_vectors() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    sp bigint;
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('recdb.activate_model'));
    sp := coalesce((SELECT s.model_id FROM recdb.serving s), 0);
    PERFORM recdb.stage_stored_vectors(sp, false);
    n := recdb.build_vector_space(sp);
    PERFORM recdb.swap_vector_space(sp);
    DELETE FROM recdb.staged_items WHERE space = sp;
    RETURN n;
END $$;

-- Deleted items leave the searched and the staged vectors. The deleter's rights: only
-- the owner deletes items (apps cannot).
CREATE OR REPLACE FUNCTION recdb.items_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM recdb.item_vectors v USING old_rows o WHERE v.item_id = o.item_id;
    DELETE FROM recdb.staged_items v USING old_rows o WHERE v.item_id = o.item_id;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER items_deleted AFTER DELETE ON recdb.items
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.items_deleted();
