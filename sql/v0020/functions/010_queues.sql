-- recdb functions, layer 1: the work queues and the triggers that fill them.
--
-- Files in sql/functions/ are the current definition of every recdb function. They are
-- idempotent (CREATE OR REPLACE) and applied in file-name order by
-- recdb.db.revision_sql.apply_functions(), called by each revision that changes one of
-- them; sql/v000N/ keeps the released history. Every function pins search_path
-- (pg_catalog first, then the schema holding pgvector, @VEC@) and schema-qualifies recdb
-- objects, or has a SQL-standard body (bound when created), or (the events trigger
-- alone, below) names nothing unqualified, so a caller's search_path cannot change what
-- it does. Who may call what: 090_privileges.sql.
--
-- Queue triggers are statement-level with transition tables, so a bulk COPY of events
-- costs one queue row per distinct user, not one trigger call per row. They are SECURITY
-- DEFINER: writers queue work without being able to read or edit the queues.

-- The one way an item gets (re-)queued for encoding. A re-queue revives the row: a new
-- change is a new chance for a parked (poison) item. Ids go in ascending order, so two
-- writers queueing overlapping sets lock rows in the same order. Returns the rows queued.
-- SECURITY INVOKER: the items trigger and activate_model() run it as the owner; the
-- worker role may call it (it writes the queue anyway); the app role may not.
CREATE OR REPLACE FUNCTION recdb.enqueue_items(p_item_ids bigint[]) RETURNS integer
LANGUAGE sql
BEGIN ATOMIC
    WITH queued AS (
        INSERT INTO recdb.item_queue AS q (item_id)
        SELECT DISTINCT t.item_id FROM unnest(p_item_ids) AS t(item_id)
        WHERE t.item_id IS NOT NULL
        ORDER BY t.item_id
        ON CONFLICT (item_id) DO UPDATE
            SET changes = q.changes + 1, attempts = 0, not_before = '-infinity',
                parked_at = NULL, last_error = NULL
        RETURNING q.item_id
    )
    SELECT count(*)::integer FROM queued;
END;

-- rerank()'s exploration candidates (recdb.new_items: items with a served vector that
-- nobody has interacted with, by content prior) follow the items as they change
-- (revision 0013): the items trigger lists an item when it gets a vector, re-scores it
-- when the worker writes a new one and unlists it when its vector goes, so a new item is
-- explored from the moment it is encoded, not from the next maintenance run. The
-- maintenance (recdb/worker/content_prior.py) unlists the listed items that got
-- popularity and re-scores them with each refitted prior: it grows with the listed items,
-- not with the catalogue (before 0013 it rebuilt the list from every item). Reads the
-- given items through their keys. SECURITY INVOKER, but the trigger runs it as the owner:
-- so its search_path holds pg_catalog only, and pgvector's operator is named with its
-- schema (nothing in a schema a writer may create objects in is looked up by name).
-- Returns the rows listed or re-scored.
CREATE OR REPLACE FUNCTION recdb.list_new_items(p_item_ids bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
-- Generic plans: key probes per given item, whatever the array's length (a plan for the
-- actual array, at 10^5 ids, scanned every item).
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM recdb.new_items b
    WHERE b.item_id = ANY (p_item_ids)
      AND NOT EXISTS (SELECT 1 FROM recdb.items i
                      WHERE i.item_id = b.item_id AND i.embedding IS NOT NULL
                        AND NOT EXISTS (SELECT 1 FROM recdb.popularity p
                                        WHERE p.item_id = i.item_id));
    -- In item order: two transactions listing overlapping items lock them in one order.
    INSERT INTO recdb.new_items AS b (item_id, prior)
    SELECT i.item_id,
           coalesce(least(1.0, greatest(0.0,
                    c.bias - (i.embedding OPERATOR(@VEC@.<#>) c.weights))), 0)
    FROM recdb.items i
    LEFT JOIN recdb.content_prior c
           ON c.model_id IS NOT DISTINCT FROM (SELECT sv.model_id FROM recdb.serving sv)
    WHERE i.item_id = ANY (p_item_ids) AND i.embedding IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM recdb.popularity p WHERE p.item_id = i.item_id)
    ORDER BY i.item_id
    ON CONFLICT (item_id) DO UPDATE SET prior = excluded.prior
    WHERE b.prior IS DISTINCT FROM excluded.prior;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- The searched copy of the given items (recdb.item_vectors, revision 0016) follows
-- recdb.items: vector, availability and attributes written to the served space's
-- partition (the one attached), the row removed when the vector goes. Every writer of
-- items (the worker, the app, the owner, a bulk load) goes through the items trigger, so
-- the two never disagree. An unchanged row is not rewritten (an HNSW insertion saved:
-- recdb.activate_model() sets every item's vector to the one its partition holds).
CREATE OR REPLACE FUNCTION recdb.sync_item_vectors(p_item_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, @VEC@, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    DELETE FROM recdb.item_vectors v
    WHERE v.item_id = ANY (p_item_ids)
      AND NOT EXISTS (SELECT 1 FROM recdb.items i
                      WHERE i.item_id = v.item_id AND i.embedding IS NOT NULL);
    INSERT INTO recdb.item_vectors AS x (space, item_id, embedding, available, attrs)
    SELECT coalesce((SELECT sv.model_id FROM recdb.serving sv), 0), i.item_id, i.embedding,
           i.available, i.attrs
    FROM recdb.items i
    WHERE i.item_id = ANY (p_item_ids) AND i.embedding IS NOT NULL
    ORDER BY i.item_id
    ON CONFLICT (space, item_id) DO UPDATE
        SET embedding = excluded.embedding, available = excluded.available,
            attrs = excluded.attrs
    WHERE (x.embedding, x.available, x.attrs)
          IS DISTINCT FROM (excluded.embedding, excluded.available, excluded.attrs);
END $$;

-- New items, and content changes (title, body, attrs) of existing ones; the worker's own
-- embedding writes do not re-queue. Both keep recdb.item_vectors current
-- (sync_item_vectors(): a vector, availability or attributes changed) and
-- recdb.new_items (list_new_items(): a vector set, changed or cleared, or rewritten with
-- a new embedded_at).
CREATE OR REPLACE FUNCTION recdb.items_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    queued integer;
    vectors bigint[];
    searched bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        queued := recdb.enqueue_items(ARRAY(SELECT n.item_id FROM new_rows n));
        vectors := ARRAY(SELECT n.item_id FROM new_rows n WHERE n.embedding IS NOT NULL);
        searched := vectors;
    ELSE
        queued := recdb.enqueue_items(ARRAY(
            SELECT n.item_id
            FROM new_rows n JOIN old_rows o ON o.item_id = n.item_id
            WHERE n.title IS DISTINCT FROM o.title
               OR n.body IS DISTINCT FROM o.body
               OR n.attrs IS DISTINCT FROM o.attrs));
        vectors := ARRAY(
            SELECT n.item_id
            FROM new_rows n JOIN old_rows o ON o.item_id = n.item_id
            WHERE (n.embedding IS NULL) <> (o.embedding IS NULL)
               OR n.embedding OPERATOR(@VEC@.<>) o.embedding
               OR (n.embedding IS NOT NULL AND n.embedded_at IS DISTINCT FROM o.embedded_at));
        searched := vectors || ARRAY(
            SELECT n.item_id
            FROM new_rows n JOIN old_rows o ON o.item_id = n.item_id
            WHERE n.embedding IS NOT NULL
              AND (n.available IS DISTINCT FROM o.available OR n.attrs IS DISTINCT FROM o.attrs));
    END IF;
    IF cardinality(searched) > 0 THEN
        PERFORM recdb.sync_item_vectors(searched);
    END IF;
    IF cardinality(vectors) > 0 THEN
        PERFORM recdb.list_new_items(vectors);
    END IF;
    IF queued > 0 THEN
        PERFORM pg_catalog.pg_notify('recdb_work', 'items');
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER items_inserted AFTER INSERT ON recdb.items
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.items_changed();
CREATE OR REPLACE TRIGGER items_updated AFTER UPDATE ON recdb.items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.items_changed();

-- updated_at follows content changes only (the worker's embedding write leaves it).
CREATE OR REPLACE FUNCTION recdb.touch_item() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER items_touched BEFORE UPDATE ON recdb.items
    FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.body IS DISTINCT FROM NEW.body
          OR OLD.attrs IS DISTINCT FROM NEW.attrs OR OLD.available IS DISTINCT FROM NEW.available)
    EXECUTE FUNCTION recdb.touch_item();

-- Events: validate rated values and the time, then queue every user whose history
-- changed. The user queue is append-only (see recdb.user_queue): writers never wait on
-- each other. An event dated in the future (beyond settings.max_future_skew) or at
-- +/-infinity is refused: one such event would become everyone's popularity reference
-- and break the decay arithmetic of its user's ranking. The check rides on the queue
-- insert (one statement per INSERT, not two): refuse_event() runs only for a bad row.
-- events.txid (the inserting transaction, a column default) is what rerank()'s fold
-- compares with the worker's snapshot (see recdb.user_vector).
CREATE OR REPLACE FUNCTION recdb.refuse_event(
    p_kind text, p_value real, p_occurred_at timestamptz, p_min real, p_max real,
    p_skew interval, p_bad_time boolean
) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_bad_time THEN
        RAISE EXCEPTION 'recdb.events: occurred_at % is not a time up to now() + max_future_skew (%)',
            p_occurred_at, p_skew
            USING ERRCODE = 'check_violation', COLUMN = 'occurred_at',
                  HINT = 'send the time the event happened (the server clock decides; '
                         'recdb.settings.max_future_skew allows for clock skew)';
    END IF;
    RAISE EXCEPTION 'recdb.events: value % is invalid for kind "%" (expected a number in [%, %])',
        coalesce(p_value::text, 'NULL'), p_kind,
        coalesce(p_min::text, '-inf'), coalesce(p_max::text, 'inf')
        USING ERRCODE = 'check_violation', COLUMN = 'value';
END $$;

-- events_changed() is the one function that does not pin its search_path (revision
-- 0020): it runs inside every app INSERT, and a pinned search_path is a settings switch
-- and restore per call (the trigger adds ~51 us of server CPU to a single-row insert of
-- ~103; ~6 us less unpinned, see README, Performance). Instead nothing in it is looked
-- up by name: tables and functions carry
-- their schema, every operator is OPERATOR(pg_catalog.op), no cast names a type, and the
-- transition tables (named tuplestores) take precedence over any relation of that name.
-- tests/sql/test_security.py holds it to that (a lint of its source, and a hostile
-- search_path shadowing each operator and function it uses).
CREATE OR REPLACE FUNCTION recdb.events_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    queued boolean := false;
BEGIN
    IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN
        INSERT INTO recdb.user_queue (user_id)
        SELECT DISTINCT n.user_id
        FROM new_rows n
        JOIN recdb.event_kinds k ON k.kind OPERATOR(pg_catalog.=) n.kind
        CROSS JOIN (SELECT st.max_future_skew FROM recdb.settings st LIMIT 1) s
        WHERE CASE WHEN (k.value_center IS NOT NULL AND n.value IS NULL)
                        OR n.value OPERATOR(pg_catalog.<) k.min_value
                        OR n.value OPERATOR(pg_catalog.>) k.max_value
                        OR NOT pg_catalog.isfinite(n.occurred_at)
                        OR n.occurred_at OPERATOR(pg_catalog.>)
                               (pg_catalog.now() OPERATOR(pg_catalog.+) s.max_future_skew)
                   THEN recdb.refuse_event(
                            n.kind, n.value, n.occurred_at, k.min_value, k.max_value,
                            s.max_future_skew,
                            NOT pg_catalog.isfinite(n.occurred_at)
                                OR n.occurred_at OPERATOR(pg_catalog.>)
                                       (pg_catalog.now() OPERATOR(pg_catalog.+) s.max_future_skew))
                   ELSE true END;
        queued := FOUND;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN  -- an event moved to another user leaves the old one
        INSERT INTO recdb.user_queue (user_id) SELECT DISTINCT o.user_id FROM old_rows o;
        queued := queued OR FOUND;
        -- Popularity counts each event once, when new (recdb.refresh_popularity): what
        -- changes after that is queued for it, the old version out, an update's new one in.
        -- Inserts add nothing here.
        INSERT INTO recdb.popularity_changes (item_id, kind, at, txid, sign)
        SELECT o.item_id, o.kind, least(o.occurred_at, o.recorded_at), o.txid, -1
        FROM old_rows o;
        IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
            INSERT INTO recdb.popularity_changes (item_id, kind, at, txid, sign)
            SELECT n.item_id, n.kind, least(n.occurred_at, n.recorded_at), n.txid, 1
            FROM new_rows n;
        END IF;
    END IF;
    IF queued THEN
        PERFORM pg_catalog.pg_notify('recdb_work', 'users');
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER events_inserted AFTER INSERT ON recdb.events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.events_changed();
CREATE OR REPLACE TRIGGER events_updated AFTER UPDATE ON recdb.events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.events_changed();
CREATE OR REPLACE TRIGGER events_deleted AFTER DELETE ON recdb.events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.events_changed();
