-- recdb functions, layer 5: maintenance the worker runs periodically. Here: the
-- collaborative state (recdb.item_popularity, recdb.item_neighbors) every rerank() reads.

-- Popularity with recency decay (the cold-start order and a ranking prior): every event
-- of a kind with weight > 0 counts as consumption, whatever its value, decayed from the
-- newest event.
CREATE OR REPLACE FUNCTION recdb.refresh_popularity() RETURNS integer
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

-- Co-visitation neighbours: two items are close when the same users have them among
-- their recent positive items (recdb.recent_positive_items, covisit_history each); the
-- score is the cosine of the two user sets, and each item keeps its covisit_neighbors
-- best. The pair count grows with the square of a user's history, hence the cap.
CREATE OR REPLACE FUNCTION recdb.refresh_neighbors() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
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
    RETURN n;
END $$;
