-- recdb 0001: triggers and ranking functions. Loaded by migrations/versions/0001_core.py.
-- Every function pins search_path (pg_catalog first, then the schema holding pgvector,
-- @VEC@) and schema-qualifies recdb objects, or has a SQL-standard body (bound when
-- created), so a caller's search_path cannot change what it does.

---------------------------------------------------------------------------
-- Queue triggers: statement-level with transition tables, so a bulk COPY of
-- events costs one upsert per distinct user, not one trigger call per row.
---------------------------------------------------------------------------

CREATE FUNCTION recdb.items_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO recdb.item_queue AS q (item_id)
        SELECT n.item_id FROM new_rows n ORDER BY n.item_id
        ON CONFLICT (item_id) DO UPDATE
            SET changes = q.changes + 1, attempts = 0, not_before = '-infinity',
                parked_at = NULL, last_error = NULL;
    ELSE
        INSERT INTO recdb.item_queue AS q (item_id)
        SELECT n.item_id
        FROM new_rows n JOIN old_rows o ON o.item_id = n.item_id
        WHERE n.title IS DISTINCT FROM o.title
           OR n.body IS DISTINCT FROM o.body
           OR n.attrs IS DISTINCT FROM o.attrs
        ORDER BY n.item_id
        ON CONFLICT (item_id) DO UPDATE
            SET changes = q.changes + 1, attempts = 0, not_before = '-infinity',
                parked_at = NULL, last_error = NULL;
    END IF;
    IF FOUND THEN
        PERFORM pg_catalog.pg_notify('recdb_work', 'items');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER items_inserted AFTER INSERT ON recdb.items
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.items_changed();
CREATE TRIGGER items_updated AFTER UPDATE ON recdb.items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.items_changed();

-- updated_at follows content changes only (the worker's embedding write leaves it).
CREATE FUNCTION recdb.touch_item() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER items_touched BEFORE UPDATE ON recdb.items
    FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.body IS DISTINCT FROM NEW.body
          OR OLD.attrs IS DISTINCT FROM NEW.attrs OR OLD.available IS DISTINCT FROM NEW.available)
    EXECUTE FUNCTION recdb.touch_item();

CREATE FUNCTION recdb.events_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT n.kind, n.value, k.min_value, k.max_value INTO bad
        FROM new_rows n JOIN recdb.event_kinds k ON k.kind = n.kind
        WHERE (k.value_center IS NOT NULL AND n.value IS NULL)
           OR n.value < k.min_value OR n.value > k.max_value
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'recdb.events: value % is invalid for kind "%" (expected a number in [%, %])',
                coalesce(bad.value::text, 'NULL'), bad.kind,
                coalesce(bad.min_value::text, '-inf'), coalesce(bad.max_value::text, 'inf')
                USING ERRCODE = 'check_violation', COLUMN = 'value';
        END IF;
    END IF;

    IF TG_OP = 'INSERT' THEN
        INSERT INTO recdb.user_queue (user_id) SELECT DISTINCT n.user_id FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO recdb.user_queue (user_id)
        SELECT n.user_id FROM new_rows n UNION SELECT o.user_id FROM old_rows o;
    ELSE
        INSERT INTO recdb.user_queue (user_id) SELECT DISTINCT o.user_id FROM old_rows o;
    END IF;
    IF FOUND THEN
        PERFORM pg_catalog.pg_notify('recdb_work', 'users');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER events_inserted AFTER INSERT ON recdb.events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.events_changed();
CREATE TRIGGER events_updated AFTER UPDATE ON recdb.events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.events_changed();
CREATE TRIGGER events_deleted AFTER DELETE ON recdb.events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.events_changed();

---------------------------------------------------------------------------
-- Event weights: one definition shared by the worker's mean encoder and the
-- zero-lag fold inside rerank(), so both compute the same vector.
---------------------------------------------------------------------------

CREATE FUNCTION recdb.event_weight(
    kind_weight real, half_life interval, value_center real, value_scale real,
    value real, age interval
) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN kind_weight::float8
    * CASE WHEN value_center IS NULL THEN 1.0
           ELSE (coalesce(value, value_center) - value_center)::float8 / value_scale END
    -- Past 40 half-lives (< 1e-12) an event weighs nothing: keeps power() and the
    -- float4 products in scale() clear of underflow errors for very old events.
    * CASE WHEN half_life IS NULL THEN 1.0
           WHEN extract(epoch FROM age) > 40 * greatest(extract(epoch FROM half_life), 1) THEN 0.0
           ELSE power(0.5::float8, greatest(extract(epoch FROM age), 0)::float8
                                   / greatest(extract(epoch FROM half_life), 1)::float8) END;

-- Scalar times vector (pgvector has only element-wise products).
-- These two RETURN-bodied functions bind every reference when created, so a caller's
-- search_path cannot change them; leaving out a SET clause lets the planner inline them.
CREATE FUNCTION recdb.scale(v vector, s double precision) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN v * array_fill(s::real, ARRAY[vector_dims(v)])::vector;

-- The user's interest vector as of now: the stored vector (weighted sum of its
-- events, kept as unit vector + norm) plus every event newer than its watermark,
-- folded in here so the newest event counts before any worker has run.
CREATE FUNCTION recdb.user_vector(
    p_user_id bigint,
    OUT embedding vector, OUT fresh_events integer, OUT stored boolean
)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, @VEC@, pg_temp AS $$
DECLARE
    u recdb.users%ROWTYPE;
    lim integer;
    folded vector;
    total vector;
BEGIN
    SELECT * INTO u FROM recdb.users WHERE user_id = p_user_id;
    stored := FOUND AND u.embedding IS NOT NULL;
    SELECT s.max_fold_events INTO lim FROM recdb.settings s;

    SELECT count(*)::integer,
           sum(recdb.scale(i.embedding,
                           recdb.event_weight(k.weight, k.half_life, k.value_center, k.value_scale,
                                              f.value, f.ref - f.occurred_at)))
      INTO fresh_events, folded
    FROM (
        SELECT e.item_id, e.kind, e.value, e.occurred_at,
               greatest(max(e.occurred_at) OVER (), u.last_event_at) AS ref
        FROM recdb.events e
        WHERE e.user_id = p_user_id AND e.event_id > coalesce(u.encoded_through, 0)
        ORDER BY e.event_id DESC
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

---------------------------------------------------------------------------
-- Popularity with recency decay (the cold-start order and a ranking prior).
---------------------------------------------------------------------------

CREATE FUNCTION recdb.refresh_popularity() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    hl interval;
    ref timestamptz;
    n integer;
BEGIN
    SELECT s.popularity_half_life INTO hl FROM recdb.settings s;
    SELECT max(e.occurred_at) INTO ref FROM recdb.events e;
    IF ref IS NULL THEN
        DELETE FROM recdb.item_popularity;
        RETURN 0;
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS recdb_popularity_tmp
        (item_id bigint PRIMARY KEY, raw double precision) ON COMMIT DROP;
    TRUNCATE recdb_popularity_tmp;
    INSERT INTO recdb_popularity_tmp
    SELECT e.item_id,
           sum(k.weight * power(0.5::float8, extract(epoch FROM ref - e.occurred_at)::float8
                                           / greatest(extract(epoch FROM hl), 1)::float8))
    FROM recdb.events e JOIN recdb.event_kinds k ON k.kind = e.kind AND k.weight > 0
    WHERE e.occurred_at > ref - 20 * hl
    GROUP BY e.item_id;

    DELETE FROM recdb.item_popularity p
    WHERE NOT EXISTS (SELECT 1 FROM recdb_popularity_tmp t WHERE t.item_id = p.item_id);

    INSERT INTO recdb.item_popularity AS p (item_id, raw, score, refreshed_at)
    SELECT t.item_id, t.raw, t.raw / nullif(max(t.raw) OVER (), 0), now()
    FROM recdb_popularity_tmp t
    ON CONFLICT (item_id) DO UPDATE
        SET raw = excluded.raw, score = coalesce(excluded.score, 0), refreshed_at = excluded.refreshed_at;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE recdb_popularity_tmp;
    RETURN n;
END $$;

-- Co-visitation neighbours from each user's newest positive events. The pair count
-- grows with the square of a user's history, hence the covisit_history cap.
CREATE FUNCTION recdb.refresh_neighbors() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    nn integer;
    hist integer;
    n integer;
BEGIN
    SELECT s.covisit_neighbors, s.covisit_history INTO nn, hist FROM recdb.settings s;
    CREATE TEMP TABLE recdb_ui ON COMMIT DROP AS
        SELECT DISTINCT r.user_id, r.item_id
        FROM (SELECT e.user_id, e.item_id,
                     row_number() OVER (PARTITION BY e.user_id ORDER BY e.event_id DESC) AS nth
              FROM recdb.events e JOIN recdb.event_kinds k ON k.kind = e.kind AND k.weight > 0) r
        WHERE r.nth <= hist;
    CREATE TEMP TABLE recdb_cnt ON COMMIT DROP AS
        SELECT u.item_id, count(*)::float8 AS n FROM recdb_ui u GROUP BY u.item_id;
    DELETE FROM recdb.item_neighbors;
    INSERT INTO recdb.item_neighbors (neighbor_id, item_id, score)
    SELECT t.i, t.j, t.s FROM (
        SELECT co.i, co.j, co.c / sqrt(ci.n * cj.n) AS s,
               row_number() OVER (PARTITION BY co.j
                                  ORDER BY co.c / sqrt(ci.n * cj.n) DESC, co.i) AS r
        FROM (SELECT a.item_id AS i, b.item_id AS j, count(*)::float8 AS c
              FROM recdb_ui a JOIN recdb_ui b ON a.user_id = b.user_id AND a.item_id <> b.item_id
              GROUP BY 1, 2) co
        JOIN recdb_cnt ci ON ci.item_id = co.i
        JOIN recdb_cnt cj ON cj.item_id = co.j
    ) t
    WHERE t.r <= nn;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE recdb_ui, recdb_cnt;
    RETURN n;
END $$;

---------------------------------------------------------------------------
-- Ranking.
---------------------------------------------------------------------------

CREATE FUNCTION recdb.check_k(fn text, k integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF k IS NULL OR k < 1 OR k > 10000 THEN
        RAISE EXCEPTION '%: k must be between 1 and 10000 (got %)', fn, coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END $$;

-- Orders a pool of item ids for a user vector: similarity + priors, an explanation
-- (the user's recent item nearest to each result) and a diversity penalty that
-- demotes the 2nd, 3rd, ... result explained by the same history item.
-- Ids that are unknown or not yet embedded come last, in pool order.
CREATE FUNCTION recdb.rank_pool(
    p_user_id bigint, p_embedding vector, p_pool bigint[], p_limit integer, p_fresh integer
) RETURNS TABLE (rank integer, item_id bigint, score double precision,
                 because_item_id bigint, reason text, fresh_events integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, @VEC@, pg_temp
BEGIN ATOMIC
    WITH s AS (SELECT * FROM recdb.settings),
    pool AS (
        SELECT t.item_id, t.ord FROM unnest(p_pool) WITH ORDINALITY AS t(item_id, ord)
    ),
    hist AS MATERIALIZED (
        SELECT DISTINCT ON (h.item_id) h.item_id, i.embedding, i.title
        FROM (
            SELECT e.item_id, e.event_id
            FROM recdb.events e JOIN recdb.event_kinds k ON k.kind = e.kind
            WHERE e.user_id = p_user_id AND k.weight > 0
              AND (k.value_center IS NULL OR e.value > k.value_center)
            ORDER BY e.event_id DESC
            LIMIT (SELECT s.explain_history FROM s)
        ) h JOIN recdb.items i ON i.item_id = h.item_id AND i.embedding IS NOT NULL
    ),
    -- Votes of the user's recent positive items for pool items, scaled to [0, 1].
    covis AS MATERIALIZED (
        SELECT n.item_id, sum(n.score) AS votes
        FROM recdb.item_neighbors n
        WHERE n.neighbor_id IN (
                SELECT e.item_id
                FROM recdb.events e JOIN recdb.event_kinds k ON k.kind = e.kind AND k.weight > 0
                WHERE e.user_id = p_user_id
                ORDER BY e.event_id DESC
                LIMIT (SELECT s.covisit_history FROM s))
          AND n.item_id = ANY (p_pool)
        GROUP BY n.item_id
    ),
    covis_max AS (SELECT max(c.votes) AS m FROM covis c),
    scored AS (
        SELECT p.item_id, p.ord, i.embedding,
               (i.embedding IS NOT NULL) AS ranked,
               (1.0 - (i.embedding <=> p_embedding))
                 + s.popularity_weight * coalesce(
                       (SELECT pop.score FROM recdb.item_popularity pop
                        WHERE pop.item_id = p.item_id), 0)
                 + s.covisit_weight * coalesce(
                       (SELECT c.votes FROM covis c WHERE c.item_id = p.item_id)
                       / nullif((SELECT cm.m FROM covis_max cm), 0), 0)
                 + CASE WHEN s.freshness_weight = 0 THEN 0.0
                        ELSE s.freshness_weight * power(0.5::float8, least(60.0,
                            greatest(extract(epoch FROM now() - i.created_at), 0)::float8
                            / greatest(extract(epoch FROM s.freshness_half_life), 1)::float8))
                   END
                 AS base,
               (i.item_id IS NULL) AS unknown
        FROM pool p
        CROSS JOIN s
        LEFT JOIN recdb.items i ON i.item_id = p.item_id
    ),
    explained AS (
        SELECT sc.*, b.item_id AS because, b.title AS because_title
        FROM scored sc
        LEFT JOIN LATERAL (
            SELECT h.item_id, h.title FROM hist h
            WHERE sc.ranked
            ORDER BY h.embedding <=> sc.embedding, h.item_id
            LIMIT 1
        ) b ON true
    ),
    diversified AS (
        SELECT x.*,
               CASE WHEN x.ranked THEN
                   x.base - (SELECT s.diversity_penalty FROM s)
                            * (row_number() OVER (PARTITION BY x.ranked, x.because
                                                  ORDER BY x.base DESC, x.item_id) - 1)
               END AS final
        FROM explained x
    )
    SELECT (row_number() OVER (ORDER BY d.ranked DESC, d.final DESC, d.ord))::integer,
           d.item_id,
           d.final::float8,
           d.because,
           CASE WHEN d.unknown THEN 'unknown item'
                WHEN NOT d.ranked THEN 'not embedded yet'
                WHEN d.because IS NOT NULL THEN 'similar to ' || d.because_title
                ELSE 'matches your interests' END,
           p_fresh
    FROM diversified d
    ORDER BY 1
    LIMIT p_limit;
END;

-- Cold-start order: decayed popularity, then newest; unknown ids last in pool order.
CREATE FUNCTION recdb.rank_cold(
    p_pool bigint[], p_limit integer, p_fresh integer
) RETURNS TABLE (rank integer, item_id bigint, score double precision,
                 because_item_id bigint, reason text, fresh_events integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT (row_number() OVER (ORDER BY (i.item_id IS NULL), coalesce(pop.score, 0) DESC,
                                        i.created_at DESC, t.ord))::integer,
           t.item_id,
           coalesce(pop.score, 0)::float8,
           NULL::bigint,
           CASE WHEN i.item_id IS NULL THEN 'unknown item'
                WHEN pop.score > 0 THEN 'popular'
                ELSE 'new' END,
           p_fresh
    FROM unnest(p_pool) WITH ORDINALITY AS t(item_id, ord)
    LEFT JOIN recdb.items i ON i.item_id = t.item_id
    LEFT JOIN recdb.item_popularity pop ON pop.item_id = t.item_id
    ORDER BY 1
    LIMIT p_limit;
END;

CREATE FUNCTION recdb.rerank(
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

    SELECT v.embedding, v.fresh_events INTO u_vec, fresh FROM recdb.user_vector(uid) v;

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
            RETURN QUERY SELECT * FROM recdb.rank_pool(uid, u_vec, pool, cardinality(pool) + 1, fresh);
        END IF;
        RETURN;
    END IF;

    IF exclude_seen THEN
        seen := ARRAY(
            SELECT DISTINCT e.item_id
            FROM recdb.events e JOIN recdb.event_kinds ek ON ek.kind = e.kind AND ek.counts_as_seen
            WHERE e.user_id = uid);
    ELSE
        seen := '{}';
    END IF;

    IF u_vec IS NULL THEN
        -- Cold start: popular items first, then the newest, both through indexes.
        pool := ARRAY(
            SELECT DISTINCT c.item_id FROM (
                (SELECT p.item_id, 0 AS src, p.score, NULL::timestamptz AS created_at
                 FROM recdb.item_popularity p JOIN recdb.items i ON i.item_id = p.item_id
                 WHERE i.available AND (filter IS NULL OR i.attrs @> filter)
                   AND NOT (i.item_id = ANY (seen))
                 ORDER BY p.score DESC, p.item_id
                 LIMIT k)
                UNION ALL
                (SELECT i.item_id, 1, 0, i.created_at
                 FROM recdb.items i
                 WHERE i.available AND (filter IS NULL OR i.attrs @> filter)
                   AND NOT (i.item_id = ANY (seen))
                 ORDER BY i.created_at DESC, i.item_id
                 LIMIT k)
            ) c);
        RETURN QUERY SELECT * FROM recdb.rank_cold(pool, k, fresh);
        RETURN;
    END IF;

    -- Personalized: nearest items through the HNSW index. The iterative scan keeps
    -- reading the index until enough rows pass the filters and the seen-exclusion.
    SELECT greatest(k * s.candidate_factor, k + 10), s.ef_search INTO pool_size, pos
    FROM recdb.settings s;
    PERFORM set_config('hnsw.ef_search', least(greatest(pos, pool_size, 40), 1000)::text, true);
    -- A filtered scan that runs dry is cut short and finished exactly (below), which is
    -- far cheaper than walking most of the graph for a rare filter.
    PERFORM set_config('hnsw.max_scan_tuples',
                       greatest(CASE WHEN filter IS NULL THEN 20000 ELSE 2000 END,
                                pool_size * 20)::text, true);
    pool := ARRAY(
        SELECT c.item_id FROM (
            SELECT i.item_id, i.embedding <=> u_vec AS dist
            FROM recdb.items i
            WHERE i.embedding IS NOT NULL AND i.available
              AND (filter IS NULL OR i.attrs @> filter)
              AND NOT (i.item_id = ANY (seen))
            ORDER BY i.embedding <=> u_vec
            LIMIT pool_size
        ) c ORDER BY c.dist);
    IF filter IS NOT NULL AND cardinality(pool) < pool_size THEN
        -- The index scan hit its budget before finding enough matches: the filter is
        -- selective, so an exact search over the matching rows (GIN on attrs) is cheap.
        -- OFFSET 0 keeps the planner from turning this back into an HNSW scan.
        pool := ARRAY(
            SELECT c.item_id FROM (
                SELECT f.item_id, f.embedding <=> u_vec AS dist
                FROM (SELECT i.item_id, i.embedding FROM recdb.items i
                      WHERE i.attrs @> filter AND i.embedding IS NOT NULL AND i.available
                        AND NOT (i.item_id = ANY (seen))
                      OFFSET 0) f
                ORDER BY dist, f.item_id
                LIMIT pool_size
            ) c ORDER BY c.dist);
    END IF;
    IF (SELECT s.covisit_weight FROM recdb.settings s) > 0 THEN
        -- Items co-consumed with the user's recent ones join the nearest neighbours.
        pool := pool || ARRAY(
            SELECT n.item_id
            FROM recdb.item_neighbors n
            JOIN recdb.items i ON i.item_id = n.item_id
            WHERE n.neighbor_id IN (
                    SELECT e.item_id
                    FROM recdb.events e JOIN recdb.event_kinds ek ON ek.kind = e.kind AND ek.weight > 0
                    WHERE e.user_id = uid
                    ORDER BY e.event_id DESC
                    LIMIT (SELECT s.covisit_history FROM recdb.settings s))
              AND i.embedding IS NOT NULL AND i.available
              AND (filter IS NULL OR i.attrs @> filter)
              AND NOT (i.item_id = ANY (seen)) AND NOT (i.item_id = ANY (pool))
            GROUP BY n.item_id
            ORDER BY sum(n.score) DESC, n.item_id
            LIMIT pool_size);
    END IF;
    RETURN QUERY SELECT * FROM recdb.rank_pool(uid, u_vec, pool, k, fresh);
END $$;

CREATE FUNCTION recdb.similar_items(p_item_id bigint, k integer DEFAULT 20)
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
        SELECT i.item_id, i.embedding <=> v AS dist
        FROM recdb.items i
        WHERE i.embedding IS NOT NULL AND i.available AND i.item_id <> iid
        ORDER BY i.embedding <=> v
        LIMIT k
    ) c
    ORDER BY 1;
END $$;

-- Unqualified entry points for applications on a default search_path. SQL-standard
-- bodies bind their references at creation time.
CREATE FUNCTION public.rerank(
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

CREATE FUNCTION public.similar_items(item_id bigint, k integer DEFAULT 20)
RETURNS TABLE (rank integer, item_id bigint, score double precision)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT * FROM recdb.similar_items(item_id, k);
END;
