-- recdb functions, layer 4: the user's interest vector as of now.

-- The stored vector (weighted sum of the user's events, kept as unit vector + norm) plus
-- every event the worker did not see, folded in here so the newest event counts before
-- any worker has run. Every event counts, negative ones included (they push away); at
-- most max_fold_events of them.
--
-- "Did not see": event ids are handed out at INSERT, transactions commit in any order,
-- so an event below the watermark (encoded_through) can still be one the worker never
-- saw. The worker stores the snapshot its events were read in (encoded_snapshot), and
-- the fold takes exactly the events that snapshot did not see: inserted by a transaction
-- at or after its xmin and not visible in it (every transaction below xmin had completed).
-- Not "xmin < xmax" as a shortcut: xmax is the newest *completed* xid + 1, so a writer
-- newer than all of them is in flight while xmin = xmax. The (user_id, txid) index keeps
-- this a short range scan: only the user's events of recent transactions.
-- Users encoded before events had txid (encoded_snapshot NULL): events above the watermark.
CREATE OR REPLACE FUNCTION recdb.user_vector(
    p_user_id bigint,
    OUT embedding vector, OUT fresh_events integer, OUT stored boolean
)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, @VEC@, pg_temp AS $$
DECLARE
    u recdb.users%ROWTYPE;
    lim integer;
    folded vector;
    total vector;
    watermark bigint;
    snap pg_snapshot;
BEGIN
    SELECT * INTO u FROM recdb.users WHERE user_id = p_user_id;
    stored := FOUND AND u.embedding IS NOT NULL;
    watermark := coalesce(u.encoded_through, 0);
    snap := u.encoded_snapshot;
    SELECT s.max_fold_events INTO lim FROM recdb.settings s;

    SELECT count(*)::integer,
           sum(recdb.scale(i.embedding,
                           recdb.event_weight(k.weight, k.half_life, k.value_center, k.value_scale,
                                              f.value, f.ref - f.occurred_at)))
      INTO fresh_events, folded
    FROM (
        SELECT n.item_id, n.kind, n.value, n.occurred_at,
               greatest(max(n.occurred_at) OVER (), u.last_event_at) AS ref
        FROM (
            SELECT e.event_id, e.item_id, e.kind, e.value, e.occurred_at
            FROM recdb.events e
            WHERE snap IS NULL AND e.user_id = p_user_id AND e.event_id > watermark
            UNION ALL
            SELECT e.event_id, e.item_id, e.kind, e.value, e.occurred_at
            FROM recdb.events e
            WHERE snap IS NOT NULL AND e.user_id = p_user_id
              AND e.txid >= pg_snapshot_xmin(snap)
              AND NOT pg_visible_in_snapshot(e.txid, snap)
        ) n
        ORDER BY n.event_id DESC
        LIMIT lim
    ) f
    JOIN recdb.event_kinds k ON k.kind = f.kind
    LEFT JOIN recdb.items i ON i.item_id = f.item_id AND i.embedding IS NOT NULL;

    IF stored THEN
        total := recdb.scale(u.embedding, greatest(u.norm, 1e-6));
        IF folded IS NOT NULL THEN
            total := total + folded;
        END IF;
    ELSE
        total := folded;
    END IF;

    IF total IS NULL OR vector_norm(total) < 1e-6 THEN
        embedding := NULL;
    ELSE
        embedding := l2_normalize(total);
    END IF;
END $$;
