-- recdb functions, layer 8: the model registry (recdb.models, revision 0003).

-- Make p_model_id the served model (NULL: serve text vectors, no model). Every item is
-- re-queued in the same transaction, so workers re-project the catalogue (and, through
-- the items, re-encode their users); NOTIFY wakes them, polling catches up otherwise.
-- The DBA's: no role is granted EXECUTE (090_privileges.sql).
CREATE OR REPLACE FUNCTION recdb.activate_model(p_model_id bigint) RETURNS integer
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
    -- What rerank() reads of the served model (its fold operator), in the same transaction.
    UPDATE recdb.serving SET model_id = p_model_id,
        fold_weights = (SELECT m.fold_weights FROM recdb.models m WHERE m.model_id = p_model_id);
    queued := recdb.enqueue_items(ARRAY(SELECT i.item_id FROM recdb.items i));
    PERFORM pg_catalog.pg_notify('recdb_work', 'model');
    RETURN queued;
END $$;
