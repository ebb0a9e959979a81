-- recdb functions, layer 5b: erasure on request (GDPR Art. 17, CCPA).

-- Removes every row that names the user, in one transaction: their events, their vector,
-- their queue rows. Returns the count per table and records an audit row (time, calling
-- login role (session_user), counts: nothing about the user). Co-visitation stops counting
-- the user at once (their set is erased and subtracted); popularity is an aggregate kept
-- by maintenance: the deleted events are subtracted at its next run (the events trigger
-- queues them, recdb.refresh_popularity; recdb.maintenance_status). A user who comes back
-- starts cold.
-- It waits for a worker batch that holds the user (the same advisory lock the worker's
-- claim takes), so no batch in flight can write the vector back afterwards.
-- SECURITY DEFINER: the app role erases without holding DELETE on users or the queue.
CREATE OR REPLACE FUNCTION recdb.forget_user(p_user_id bigint) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n_events bigint;
    n_users bigint;
    n_queue bigint;
    counts jsonb;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'recdb.forget_user: user_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('recdb.user_queue', p_user_id));
    DELETE FROM recdb.events WHERE user_id = p_user_id;
    GET DIAGNOSTICS n_events = ROW_COUNT;
    -- Co-visitation: the user's set (rows naming them) goes now, and the counts and lists
    -- stop counting it; waits for a maintenance step in flight.
    PERFORM pg_advisory_xact_lock(hashtext('recdb.covisitation'));
    PERFORM recdb.covisit_apply(ARRAY[p_user_id]);
    DELETE FROM recdb.covisit_queue WHERE user_id = p_user_id;
    DELETE FROM recdb.users WHERE user_id = p_user_id;
    GET DIAGNOSTICS n_users = ROW_COUNT;
    -- after the events: their delete trigger queued the user once more
    DELETE FROM recdb.user_queue WHERE user_id = p_user_id;
    GET DIAGNOSTICS n_queue = ROW_COUNT;
    counts := jsonb_build_object('events', n_events, 'users', n_users, 'user_queue', n_queue);
    INSERT INTO recdb.erasures (called_by, counts) VALUES (session_user, counts);
    RETURN counts;
END $$;
