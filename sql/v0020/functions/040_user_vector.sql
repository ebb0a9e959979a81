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
--
-- How they fold in is the served encoder's. With a trained model served that ships a
-- fold operator (recdb.serving.fold_weights = [a, b_0..b_{J-1}, c_0..c_{J-1}], installed
-- by activate_model(), fitted by recdb.sequence.fold so the folded vector predicts the
-- next item as the model would): a * stored + sum_j sign(kind weight) * (b_j * item_j +
-- c_j * next_j), j = 0 for the newest (the last weights for older ones), next_j the
-- model's "what follows this item" vector (recdb.item_next). Otherwise the mean
-- encoder's algebra: the stored weighted sum (unit vector x norm) plus each event's
-- event_weight() x its item vector.
CREATE OR REPLACE FUNCTION recdb.user_vector(
    p_user_id bigint,
    OUT embedding vector, OUT fresh_events integer, OUT stored boolean
)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, @VEC@, pg_temp
-- Planned once per session: a custom plan per call (the plan cache's default here, as the
-- generic plan's estimate counts both UNION ALL branches) cost more than running it.
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    u_embedding vector;
    u_norm real;
    last_at timestamptz;
    lim integer;
    folded vector;
    total vector;
    watermark bigint;
    snap pg_snapshot;
    fw real[];
    served bigint;
    j integer;
    folded_next vector;
BEGIN
    -- One statement for the user's row and the two singletons (the served path counts
    -- statements: each costs an executor start).
    SELECT u.embedding, u.norm, coalesce(u.encoded_through, 0), u.encoded_snapshot,
           u.last_event_at, s.max_fold_events, sv.fold_weights, sv.model_id
      INTO u_embedding, u_norm, watermark, snap, last_at, lim, fw, served
    FROM recdb.settings s
    LEFT JOIN recdb.serving sv ON true
    LEFT JOIN recdb.users u ON u.user_id = p_user_id;
    stored := u_embedding IS NOT NULL;
    j := coalesce((cardinality(fw) - 1) / 2, 0);  -- 0: the mean encoder's algebra

    SELECT count(*)::integer,
           sum(recdb.scale(i.embedding,
                           CASE WHEN j = 0 THEN
                                    recdb.event_weight(k.weight, k.half_life, k.value_center,
                                                       k.value_scale, f.value, f.ref - f.occurred_at)
                                ELSE sign(k.weight)::float8 * fw[1 + least(f.pos, j)]
                           END)),
           sum(recdb.scale(nx.embedding, sign(k.weight)::float8 * fw[1 + j + least(f.pos, j)]))
      INTO fresh_events, folded, folded_next
    FROM (
        SELECT n.item_id, n.kind, n.value, n.occurred_at,
               greatest(max(n.occurred_at) OVER (), last_at) AS ref,
               (row_number() OVER (ORDER BY n.event_id DESC))::integer AS pos
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
    LEFT JOIN recdb.items i ON i.item_id = f.item_id AND i.embedding IS NOT NULL
    LEFT JOIN recdb.item_next nx ON j > 0 AND nx.item_id = f.item_id AND nx.model_id = served;

    IF stored THEN
        total := recdb.scale(u_embedding, CASE WHEN j = 0 THEN greatest(u_norm, 1e-6)
                                               ELSE fw[1] END);
        IF folded IS NOT NULL THEN
            total := total + folded;
        END IF;
    ELSE
        total := folded;
    END IF;
    IF folded_next IS NOT NULL THEN
        total := coalesce(total + folded_next, folded_next);
    END IF;

    IF total IS NULL OR vector_norm(total) < 1e-6 THEN
        embedding := NULL;
    ELSE
        embedding := l2_normalize(total);
    END IF;
END $$;
