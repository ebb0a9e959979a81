-- recdb 0003: trained models. Loaded by migrations/versions/0003_models.py.
--
-- items.text_embedding keeps the frozen text-encoder vector of every item; items.embedding
-- (what rerank() searches through the HNSW index) is the active model's item output, or
-- the text vector itself while no model is active. text_key says which text (and which
-- text model) text_embedding was computed from, so a re-queued item whose text did not
-- change is only re-projected, not re-encoded.
DO $$
BEGIN
    EXECUTE format('ALTER TABLE recdb.items ADD COLUMN text_embedding %s',
                   (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                    WHERE a.attrelid = 'recdb.items'::regclass AND a.attname = 'embedding'));
END $$;
ALTER TABLE recdb.items ADD COLUMN text_key text;
-- Until now embedding WAS the text vector: keep it (text_key NULL: re-encoded on next change).
UPDATE recdb.items SET text_embedding = embedding WHERE embedding IS NOT NULL;

-- The model registry. One row per trained model: weights (recdb's own pickle-free
-- format), the config and validation metrics, and the event watermark of its training
-- data. At most one row is active; every worker serves the active one, and activating an
-- older row is the rollback.
CREATE TABLE recdb.models (
    model_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL DEFAULT 'sequence' CHECK (kind IN ('sequence')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    config           jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),
    metrics          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metrics) = 'object'),
    text_dim         integer NOT NULL CHECK (text_dim > 0),
    dim              integer NOT NULL CHECK (dim > 0),
    trained_through  bigint NOT NULL,
    blob             bytea NOT NULL,
    sha256           bytea NOT NULL,
    active           boolean NOT NULL DEFAULT false,
    activated_at     timestamptz,
    CONSTRAINT models_sha256_matches CHECK (sha256 = pg_catalog.sha256(blob))
);
CREATE UNIQUE INDEX models_one_active ON recdb.models (active) WHERE active;
COMMENT ON TABLE recdb.models IS
    'recdb model registry: recdb train writes rows, recdb.activate_model() picks the served one';

-- Which model each worker has loaded (recdb status).
ALTER TABLE recdb.workers ADD COLUMN model_id bigint;

-- Make p_model_id the served model (NULL: serve text vectors, no model). Every item is
-- re-queued in the same transaction, so workers re-project the catalogue (and, through
-- the items, re-encode their users); NOTIFY wakes them, polling catches up otherwise.
CREATE FUNCTION recdb.activate_model(p_model_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    queued integer;
BEGIN
    -- One activation at a time: two concurrent ones would both clear, then both set.
    PERFORM pg_advisory_xact_lock(hashtext('recdb.activate_model'));
    IF p_model_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM recdb.models WHERE model_id = p_model_id) THEN
        RAISE EXCEPTION 'activate_model: no model with model_id %', p_model_id
            USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE recdb.models SET active = false WHERE active AND model_id IS DISTINCT FROM p_model_id;
    UPDATE recdb.models SET active = true, activated_at = now()
    WHERE model_id = p_model_id AND NOT active;
    INSERT INTO recdb.item_queue AS q (item_id)
    SELECT item_id FROM recdb.items ORDER BY item_id
    ON CONFLICT (item_id) DO UPDATE
        SET changes = q.changes + 1, attempts = 0, not_before = '-infinity',
            parked_at = NULL, last_error = NULL;
    GET DIAGNOSTICS queued = ROW_COUNT;
    PERFORM pg_catalog.pg_notify('recdb_work', 'model');
    RETURN queued;
END $$;
REVOKE EXECUTE ON FUNCTION recdb.activate_model(bigint) FROM PUBLIC;

-- Least privilege (0002): workers read the registry and write text vectors.
GRANT SELECT ON recdb.models TO recdb_worker;
GRANT SELECT (model_id, kind, created_at, config, metrics, text_dim, dim, trained_through,
              sha256, active, activated_at) ON recdb.models TO recdb_readonly;
GRANT UPDATE (text_embedding, text_key) ON recdb.items TO recdb_worker;
