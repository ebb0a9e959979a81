-- recdb functions, layer 5: maintenance the worker runs periodically, off the encoding
-- path: the collaborative state (recdb.item_popularity, recdb.item_neighbors) every
-- rerank() reads, and retention.

-- When each job last finished (recdb status, recdb.maintenance_status): erasures are
-- honoured by popularity and co-visitation from the next run after them.
CREATE OR REPLACE FUNCTION recdb.record_maintenance(p_job text, p_took interval, p_rows bigint)
RETURNS void
LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO recdb.maintenance AS m (job, finished_at, seconds, rows)
    VALUES (p_job, clock_timestamp(), extract(epoch FROM p_took), p_rows)
    ON CONFLICT (job) DO UPDATE
        SET finished_at = excluded.finished_at, seconds = excluded.seconds, rows = excluded.rows;
END;

-- Popularity with recency decay (the cold-start order and a ranking prior): every event
-- of a kind with weight > 0 counts as consumption, whatever its value, decayed from the
-- newest event, or from now() if a stored event lies in the future (one outlier must
-- not decay everyone else's popularity to nothing).
CREATE OR REPLACE FUNCTION recdb.refresh_popularity() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    hl interval;
    ref timestamptz;
    n integer;
BEGIN
    SELECT s.popularity_half_life INTO hl FROM recdb.settings s;
    SELECT least(max(e.occurred_at), now()) INTO ref FROM recdb.events e;
    IF ref IS NULL THEN
        DELETE FROM recdb.item_popularity;
        PERFORM recdb.record_maintenance('popularity', clock_timestamp() - started, 0);
        RETURN 0;
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS recdb_popularity_tmp
        (item_id bigint PRIMARY KEY, raw double precision) ON COMMIT DROP;
    TRUNCATE recdb_popularity_tmp;
    INSERT INTO recdb_popularity_tmp
    SELECT e.item_id,
           sum(k.weight * power(0.5::float8, greatest(extract(epoch FROM ref - e.occurred_at), 0)::float8
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
    PERFORM recdb.record_maintenance('popularity', clock_timestamp() - started, n);
    RETURN n;
END $$;

-- Co-visitation neighbours: two items are close when the same users have them among
-- their recent positive items (recdb.recent_positive_items, covisit_history each); the
-- score is the cosine of the two user sets, and each item keeps its covisit_neighbors
-- best. The pair count grows with the square of a user's history, hence the cap.
CREATE OR REPLACE FUNCTION recdb.refresh_neighbors() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    nn integer;
    hist integer;
    n integer;
BEGIN
    SELECT s.covisit_neighbors, s.covisit_history INTO nn, hist FROM recdb.settings s;
    CREATE TEMP TABLE recdb_ui ON COMMIT DROP AS
        SELECT DISTINCT u.user_id, r.item_id
        FROM (SELECT DISTINCT e.user_id FROM recdb.events e) u
        CROSS JOIN LATERAL recdb.recent_positive_items(u.user_id, hist) r;
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
    PERFORM recdb.record_maintenance('neighbors', clock_timestamp() - started, n);
    RETURN n;
END $$;

-- Retention: delete up to p_batch events older than settings.event_retention (NULL: keep
-- everything) and return how many. One call = one short transaction; the worker calls it
-- until it returns 0, off the encoding path. Deleting events re-queues their users (the
-- events trigger), so each user vector is rebuilt from what is kept: old interests leave
-- the stored vector as if they had never been recorded.
-- SECURITY DEFINER: the worker expires events without holding DELETE on them.
CREATE OR REPLACE FUNCTION recdb.apply_retention(p_batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keep interval;
    n integer;
    started timestamptz := clock_timestamp();
BEGIN
    IF p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'recdb.apply_retention: batch must be >= 1, got %', p_batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.event_retention INTO keep FROM recdb.settings s;
    IF keep IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM recdb.events e
    WHERE (e.user_id, e.event_id) IN (
        SELECT o.user_id, o.event_id FROM recdb.events o
        WHERE o.occurred_at < now() - keep
        ORDER BY o.occurred_at
        LIMIT p_batch
        FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM recdb.record_maintenance('retention', clock_timestamp() - started, n);
    RETURN n;
END $$;
