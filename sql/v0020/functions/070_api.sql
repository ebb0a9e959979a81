-- recdb functions, layer 7: the public SQL API, rerank() and similar_items(), in schema
-- recdb and as thin wrappers in public. Their signatures are a contract with every
-- application: change what they do, never what they take or return.

-- The top k items for a user (catalog mode) or the app's own candidates re-ordered
-- (candidates mode); cold-start order for a user without a usable vector. Checks its
-- arguments, builds the pool, and leaves the scoring to rank_pool()/rank_cold().
CREATE OR REPLACE FUNCTION recdb.rerank(
    user_id bigint,
    k integer DEFAULT 20,
    candidates bigint[] DEFAULT NULL,
    filter jsonb DEFAULT NULL,
    exclude_seen boolean DEFAULT true
) RETURNS TABLE (rank integer, item_id bigint, score double precision,
                 because_item_id bigint, reason text, fresh_events integer)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @VEC@, pg_temp
SET hnsw.iterative_scan = 'relaxed_order'
SET hnsw.ef_search = 100
SET hnsw.max_scan_tuples = 20000
AS $$
#variable_conflict use_variable
DECLARE
    uid CONSTANT bigint := user_id;
    u_vec vector;
    fresh integer;
    seen bigint[];
    pool bigint[];
    pool_size integer;
    pos integer;
    covisit_w real;
    covisit_hist integer;
    vote_ids bigint[];
    votes double precision[];
    explore integer;
    exact boolean;
BEGIN
    IF uid IS NULL THEN
        RAISE EXCEPTION 'rerank: user_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM recdb.check_k('rerank', k);
    IF exclude_seen IS NULL THEN
        RAISE EXCEPTION 'rerank: exclude_seen must be true or false, not NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF filter IS NOT NULL AND jsonb_typeof(filter) <> 'object' THEN
        RAISE EXCEPTION 'rerank: filter must be a JSON object, got a JSON %', jsonb_typeof(filter)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF candidates IS NOT NULL THEN
        pos := array_position(candidates, NULL);
        IF pos IS NOT NULL THEN
            RAISE EXCEPTION 'rerank: candidates must not contain NULL (position %)', pos
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        IF cardinality(candidates) > 100000 THEN
            RAISE EXCEPTION 'rerank: candidates may hold at most 100000 ids (got %)', cardinality(candidates)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;

    -- One statement: the user vector, the knobs, and whether the catalogue is small enough
    -- to search exactly (settings.exact_scan_below against the planner's row count).
    SELECT v.embedding, v.fresh_events, greatest(k * s.candidate_factor, k + 10), s.ef_search,
           s.covisit_weight, s.covisit_history,
           least(floor(k * s.explore_share), greatest(k - s.explore_after, 0))::integer,
           coalesce((SELECT c.reltuples BETWEEN 0 AND s.exact_scan_below
                     FROM pg_catalog.pg_class c WHERE c.oid = 'recdb.items'::regclass), false)
      INTO u_vec, fresh, pool_size, pos, covisit_w, covisit_hist, explore, exact
    FROM recdb.user_vector(uid) v, recdb.settings s;
    -- Catalog mode: what the user consumed, never a result (candidates mode: NULL).
    IF candidates IS NULL AND exclude_seen THEN
        seen := ARRAY(
            SELECT DISTINCT e.item_id
            FROM recdb.events e JOIN recdb.event_kinds ek ON ek.kind = e.kind AND ek.counts_as_seen
            WHERE e.user_id = uid);
    ELSIF candidates IS NULL THEN
        seen := '{}';
    END IF;
    IF u_vec IS NOT NULL AND covisit_w <> 0 THEN
        -- Counted once: they join the pool (catalog mode) and score it (rank_pool). Seen
        -- items are neither, so they are left out before the sum: on MovieLens-100K,
        -- 59% of a heavy user's vote rows (half the items voted for), a quarter of a
        -- light or median user's (revision 0019).
        SELECT array_agg(v.item_id ORDER BY v.votes DESC, v.item_id),
               array_agg(v.votes ORDER BY v.votes DESC, v.item_id)
          INTO vote_ids, votes
        FROM recdb.covisit_votes(uid, covisit_hist, seen) v;
    END IF;

    IF candidates IS NOT NULL THEN
        -- The app's own list: every distinct id once, first occurrence keeps its place.
        pool := ARRAY(
            SELECT c.id FROM (
                SELECT DISTINCT ON (t.id) t.id, t.ord
                FROM unnest(candidates) WITH ORDINALITY AS t(id, ord)
                ORDER BY t.id, t.ord
            ) c ORDER BY c.ord);
        IF u_vec IS NULL THEN
            RETURN QUERY SELECT * FROM recdb.rank_cold(pool, cardinality(pool) + 1, fresh);
        ELSE
            RETURN QUERY SELECT * FROM recdb.rank_pool(uid, u_vec, pool, cardinality(pool) + 1, fresh,
                                                     vote_ids, votes);
        END IF;
        RETURN;
    END IF;

    IF u_vec IS NULL THEN
        -- Cold start: popular items first, then the newest, both through indexes.
        pool := ARRAY(
            SELECT DISTINCT c.item_id FROM (
                (SELECT p.item_id, 0 AS src, p.mass, NULL::timestamptz AS created_at
                 FROM recdb.popularity p JOIN recdb.items i ON i.item_id = p.item_id
                 WHERE i.available AND (filter IS NULL OR i.attrs @> filter)
                   AND i.item_id NOT IN (SELECT unnest(seen))
                 ORDER BY p.mass DESC, p.item_id
                 LIMIT k)
                UNION ALL
                (SELECT i.item_id, 1, 0, i.created_at
                 FROM recdb.items i
                 WHERE i.available AND (filter IS NULL OR i.attrs @> filter)
                   AND i.item_id NOT IN (SELECT unnest(seen))
                 ORDER BY i.created_at DESC, i.item_id
                 LIMIT k)
            ) c);
        RETURN QUERY SELECT * FROM recdb.rank_cold(pool, k, fresh);
        RETURN;
    END IF;

    -- Personalized: nearest items through the HNSW index, or exactly (every item's
    -- distance, a top-N sort) when the catalogue is small. The iterative scan keeps
    -- reading the index until enough rows pass the filters and the seen-exclusion.
    IF NOT exact THEN
        PERFORM set_config('hnsw.ef_search', least(greatest(pos, pool_size, 40), 1000)::text, true);
        -- A filtered scan that runs dry is cut short and finished exactly (below), which
        -- is far cheaper than walking most of the graph for a rare filter.
        PERFORM set_config('hnsw.max_scan_tuples',
                           greatest(CASE WHEN filter IS NULL THEN 20000 ELSE 2000 END,
                                    pool_size * 20)::text, true);
        -- The served space's partition of recdb.item_vectors (the only one attached):
        -- vectors with the availability and attributes the filters read, and both indexes.
        pool := ARRAY(
            SELECT c.item_id FROM (
                SELECT v.item_id, v.embedding <=> u_vec AS dist
                FROM recdb.item_vectors v
                WHERE v.available AND (filter IS NULL OR v.attrs @> filter)
                  AND v.item_id NOT IN (SELECT unnest(seen))
                ORDER BY v.embedding <=> u_vec
                LIMIT pool_size
            ) c ORDER BY c.dist);
    ELSIF filter IS NULL THEN
        -- OFFSET 0 keeps the planner from turning this into an HNSW scan.
        pool := ARRAY(
            SELECT c.item_id FROM (
                SELECT f.item_id, f.embedding <=> u_vec AS dist
                FROM (SELECT i.item_id, i.embedding FROM recdb.items i
                      WHERE i.embedding IS NOT NULL AND i.available
                        AND i.item_id NOT IN (SELECT unnest(seen))
                      OFFSET 0) f
                ORDER BY dist, f.item_id
                LIMIT pool_size
            ) c ORDER BY c.dist);
    END IF;
    IF filter IS NOT NULL AND (exact OR cardinality(pool) < pool_size) THEN
        -- A small catalogue, or an index scan that hit its budget before finding enough
        -- matches (the filter is selective): an exact search over the matching rows (GIN
        -- on attrs) is cheap. OFFSET 0 keeps the planner from turning this back into an
        -- HNSW scan.
        pool := ARRAY(
            SELECT c.item_id FROM (
                SELECT f.item_id, f.embedding <=> u_vec AS dist
                FROM (SELECT i.item_id, i.embedding FROM recdb.items i
                      WHERE i.attrs @> filter AND i.embedding IS NOT NULL AND i.available
                        AND i.item_id NOT IN (SELECT unnest(seen))
                      OFFSET 0) f
                ORDER BY dist, f.item_id
                LIMIT pool_size
            ) c ORDER BY c.dist);
    END IF;
    IF vote_ids IS NOT NULL OR explore > 0 THEN
        -- One statement, two sources of candidates beside the nearest neighbours:
        -- 1. items co-consumed with the user's recent positive ones: the k + 10 most
        --    voted (at most pool_size) that pass the same filters, read in vote order.
        --    Beyond those, a voted item needs the similarity of a nearest neighbour to
        --    reach the top k, and then it is in the pool already: on MovieLens-100K,
        --    recdb eval gives the mean and text encoders the same figures as with
        --    pool_size of them (revision 0019), and rank_pool() scores and explains
        --    fewer. The cheap hashed checks run on every voted item; the row lookup
        --    only until enough pass (OFFSET 0 keeps it above the sort, evaluated
        --    lazily);
        -- 2. exploration: brand-new items (recdb.new_items, nobody has interacted with
        --    them yet) by content prior, through its index; rank_pool() keeps the explore
        --    best-scored of them for this user. Only the explore x 50 most promising are
        --    read, whatever the filter: a selective filter would otherwise walk most of
        --    the new items to find a few that match (4 ms of a 11 ms filtered call on a
        --    10^5-item shop, growing with the never-touched items).
        pool := pool || ARRAY(
            SELECT v.item_id
            FROM (SELECT c.item_id, c.ord
                  FROM unnest(vote_ids) WITH ORDINALITY AS c(item_id, ord)
                  WHERE c.item_id NOT IN (SELECT unnest(pool))  -- seen ones have no votes
                  ORDER BY c.ord
                  OFFSET 0) v
            WHERE EXISTS (SELECT 1 FROM recdb.items i
                          WHERE i.item_id = v.item_id AND i.embedding IS NOT NULL
                            AND i.available AND (filter IS NULL OR i.attrs @> filter))
            ORDER BY v.ord
            LIMIT least(pool_size, k + 10)) || ARRAY(
            SELECT n.item_id
            FROM (SELECT b.item_id, b.prior FROM recdb.new_items b
                  WHERE explore > 0
                  ORDER BY b.prior DESC, b.item_id
                  LIMIT explore * 50) n
            JOIN recdb.items i ON i.item_id = n.item_id
            WHERE i.embedding IS NOT NULL AND i.available
              AND (filter IS NULL OR i.attrs @> filter)
              AND n.item_id NOT IN (SELECT unnest(seen))
              AND n.item_id NOT IN (SELECT unnest(pool))
              AND n.item_id NOT IN (SELECT unnest(vote_ids))
              -- OFFSET 0: a per-row check, not an anti-join. Both tables hold unique item
              -- ids, so the planner would estimate the anti-join at one row, sort every
              -- never-touched item (a cost per call growing with the catalogue: 36 ms at
              -- 13,000 such items) instead of walking the prior index until enough pass.
              AND NOT EXISTS (SELECT 1 FROM recdb.popularity p WHERE p.item_id = n.item_id
                              OFFSET 0)
            ORDER BY n.prior DESC, n.item_id
            LIMIT explore * 10);
    END IF;
    RETURN QUERY SELECT * FROM recdb.rank_pool(uid, u_vec, pool, k, fresh, vote_ids, votes);
END $$;

CREATE OR REPLACE FUNCTION recdb.similar_items(p_item_id bigint, k integer DEFAULT 20)
RETURNS TABLE (rank integer, item_id bigint, score double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @VEC@, pg_temp
SET hnsw.iterative_scan = 'relaxed_order'
SET hnsw.ef_search = 40
AS $$
#variable_conflict use_variable
DECLARE
    iid CONSTANT bigint := p_item_id;
    v vector;
BEGIN
    IF iid IS NULL THEN
        RAISE EXCEPTION 'similar_items: item_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM recdb.check_k('similar_items', k);
    SELECT i.embedding INTO v FROM recdb.items i WHERE i.item_id = iid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'similar_items: item_id % does not exist', iid
            USING ERRCODE = 'no_data_found';
    END IF;
    IF v IS NULL THEN
        RETURN;  -- not encoded yet: no neighbours to speak of
    END IF;
    PERFORM set_config('hnsw.ef_search', least(greatest(k + 10, 40), 1000)::text, true);
    RETURN QUERY
    SELECT (row_number() OVER (ORDER BY c.dist, c.item_id))::integer, c.item_id, (1.0 - c.dist)::float8
    FROM (
        SELECT x.item_id, x.embedding <=> v AS dist
        FROM recdb.item_vectors x
        WHERE x.available AND x.item_id <> iid
        ORDER BY x.embedding <=> v
        LIMIT k
    ) c
    ORDER BY 1;
END $$;

-- Unqualified entry points for applications on a default search_path. SQL-standard
-- bodies bind their references at creation time.
CREATE OR REPLACE FUNCTION public.rerank(
    user_id bigint,
    k integer DEFAULT 20,
    candidates bigint[] DEFAULT NULL,
    filter jsonb DEFAULT NULL,
    exclude_seen boolean DEFAULT true
) RETURNS TABLE (rank integer, item_id bigint, score double precision,
                 because_item_id bigint, reason text, fresh_events integer)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT * FROM recdb.rerank(user_id, k, candidates, filter, exclude_seen);
END;

CREATE OR REPLACE FUNCTION public.similar_items(item_id bigint, k integer DEFAULT 20)
RETURNS TABLE (rank integer, item_id bigint, score double precision)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT * FROM recdb.similar_items(item_id, k);
END;
