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

    -- An item whose events all left the window keeps a zero row: "no row" means nobody
    -- ever interacted with it, which is when the content prior (rank_pool) stands in.
    UPDATE recdb.item_popularity p SET raw = 0, score = 0, refreshed_at = now()
    WHERE p.score <> 0
      AND NOT EXISTS (SELECT 1 FROM recdb_popularity_tmp t WHERE t.item_id = p.item_id);

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
-- their recent positive items (the distinct items of covisit_history newest positive
-- events each, recdb.recent_positive_items); the score is the cosine of the two user
-- sets, and each item keeps its covisit_neighbors best (ties: lower id first).
--
-- The counts behind the cosine live in tables (revision 0007: covisit_user_items,
-- covisit_counts, covisit_pairs), so maintenance applies only the users whose sets
-- changed (sync_covisitation) and re-lists only the items whose list can have changed
-- (covisit_relist). refresh_neighbors() is the full rebuild (`recdb refresh --full`, or
-- when the knobs changed); both give the same rows.

-- Item j's list: the covisit_neighbors items i with the highest
-- users(i, j) / sqrt(users(i) * users(j)), and the best score left out (runner-up: what a
-- listed item must stay above). One index range of covisit_pairs per item.
CREATE OR REPLACE FUNCTION recdb.covisit_relist(p_items bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    nn integer;
    n integer;
BEGIN
    SELECT s.covisit_neighbors INTO nn FROM recdb.settings s;
    DELETE FROM recdb.item_neighbors nb WHERE nb.item_id = ANY (p_items);
    DELETE FROM recdb.covisit_runner_up ru WHERE ru.item_id = ANY (p_items);
    CREATE TEMP TABLE recdb_cv_ranked ON COMMIT DROP AS
    SELECT t.i, t.j, t.s, t.r FROM (
        SELECT p.other_id AS i, p.item_id AS j,
               p.users::float8 / sqrt(ci.users::float8 * cj.users::float8) AS s,
               row_number() OVER (PARTITION BY p.item_id
                                  ORDER BY p.users::float8 / sqrt(ci.users::float8 * cj.users::float8)
                                           DESC, p.other_id) AS r
        FROM recdb.covisit_pairs p
        JOIN recdb.covisit_counts ci ON ci.item_id = p.other_id
        JOIN recdb.covisit_counts cj ON cj.item_id = p.item_id
        WHERE p.item_id = ANY (p_items)
    ) t
    WHERE t.r <= nn + 1;
    INSERT INTO recdb.item_neighbors (neighbor_id, item_id, score)
    SELECT t.i, t.j, t.s FROM recdb_cv_ranked t WHERE t.r <= nn;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO recdb.covisit_runner_up (item_id, score)
    SELECT t.j, t.s FROM recdb_cv_ranked t WHERE t.r = nn + 1;
    DROP TABLE recdb_cv_ranked;
    RETURN n;
END $$;

-- The full rebuild: every user's set from the events, the counts, the pairs, every list.
-- Cost: the sum over users of their set size squared (covisit_history caps it).
CREATE OR REPLACE FUNCTION recdb.refresh_neighbors() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    hist integer;
    nn integer;
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('recdb.covisitation'));
    SELECT s.covisit_history, s.covisit_neighbors INTO hist, nn FROM recdb.settings s;
    -- First: a user whose vector is written from here on is applied again by the next step.
    DELETE FROM recdb.covisit_queue;
    TRUNCATE recdb.covisit_user_items, recdb.covisit_counts, recdb.covisit_pairs,
             recdb.covisit_runner_up;
    DELETE FROM recdb.item_neighbors;  -- not TRUNCATE: rerank() reads it meanwhile
    INSERT INTO recdb.covisit_user_items (user_id, item_id)
    SELECT DISTINCT u.user_id, r.item_id
    FROM (SELECT DISTINCT e.user_id FROM recdb.events e) u
    CROSS JOIN LATERAL recdb.recent_positive_items(u.user_id, hist) r;
    INSERT INTO recdb.covisit_counts (item_id, users)
    SELECT c.item_id, count(*) FROM recdb.covisit_user_items c GROUP BY c.item_id;
    INSERT INTO recdb.covisit_pairs (item_id, other_id, users)
    SELECT a.item_id, b.item_id, count(*)
    FROM recdb.covisit_user_items a
    JOIN recdb.covisit_user_items b ON b.user_id = a.user_id AND b.item_id <> a.item_id
    GROUP BY a.item_id, b.item_id;
    n := recdb.covisit_relist(ARRAY(SELECT c.item_id FROM recdb.covisit_counts c));
    INSERT INTO recdb.covisit_state AS cs (id, history, neighbors, built_at)
    VALUES (true, hist, nn, clock_timestamp())
    ON CONFLICT (id) DO UPDATE
        SET history = excluded.history, neighbors = excluded.neighbors,
            built_at = excluded.built_at;
    PERFORM recdb.record_maintenance('neighbors', clock_timestamp() - started, n);
    RETURN n;
END $$;

-- Applies the users' current sets (from their events now; empty for an erased user):
-- membership, counts and pair counts change by what each set gained or lost, then the
-- lists whose members can have changed are rebuilt; the others touched get new scores.
-- Cost: per user, (items gained or lost) x (set size); per item whose count fell, its
-- pair range; plus the rebuilt lists' pair ranges. Callers hold the covisitation
-- advisory lock. Returns how many list rows were rebuilt.
CREATE OR REPLACE FUNCTION recdb.covisit_apply(p_users bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    hist integer;
    nn integer;
    n integer;
BEGIN
    SELECT s.covisit_history, s.covisit_neighbors INTO hist, nn FROM recdb.settings s;
    CREATE TEMP TABLE recdb_cv ON COMMIT DROP AS
        SELECT coalesce(nw.user_id, od.user_id) AS user_id,
               coalesce(nw.item_id, od.item_id) AS item_id,
               nw.item_id IS NOT NULL AS in_new, od.item_id IS NOT NULL AS in_old
        FROM (SELECT DISTINCT u.user_id, r.item_id
              FROM unnest(p_users) AS u(user_id)
              CROSS JOIN LATERAL recdb.recent_positive_items(u.user_id, hist) r) nw
        FULL JOIN (SELECT o.user_id, o.item_id FROM recdb.covisit_user_items o
                   WHERE o.user_id = ANY (p_users)) od
               ON od.user_id = nw.user_id AND od.item_id = nw.item_id;
    -- Ordered pairs gained (both in the new set, at least one newly) and lost.
    CREATE TEMP TABLE recdb_cv_pairs ON COMMIT DROP AS
        SELECT d.i, d.j, sum(d.d)::integer AS d FROM (
            SELECT a.item_id AS i, b.item_id AS j, 1 AS d
            FROM recdb_cv a JOIN recdb_cv b ON b.user_id = a.user_id AND b.item_id <> a.item_id
            WHERE a.in_new AND NOT a.in_old AND b.in_new
            UNION ALL
            SELECT b.item_id, a.item_id, 1
            FROM recdb_cv a JOIN recdb_cv b ON b.user_id = a.user_id AND b.item_id <> a.item_id
            WHERE a.in_new AND NOT a.in_old AND b.in_new AND b.in_old
            UNION ALL
            SELECT a.item_id, b.item_id, -1
            FROM recdb_cv a JOIN recdb_cv b ON b.user_id = a.user_id AND b.item_id <> a.item_id
            WHERE a.in_old AND NOT a.in_new AND b.in_old
            UNION ALL
            SELECT b.item_id, a.item_id, -1
            FROM recdb_cv a JOIN recdb_cv b ON b.user_id = a.user_id AND b.item_id <> a.item_id
            WHERE a.in_old AND NOT a.in_new AND b.in_old AND b.in_new
        ) d
        GROUP BY d.i, d.j
        HAVING sum(d.d) <> 0;
    CREATE TEMP TABLE recdb_cv_counts ON COMMIT DROP AS
        SELECT c.item_id, sum(CASE WHEN c.in_new THEN 1 ELSE -1 END)::integer AS d
        FROM recdb_cv c WHERE c.in_new <> c.in_old
        GROUP BY c.item_id
        HAVING sum(CASE WHEN c.in_new THEN 1 ELSE -1 END) <> 0;

    DELETE FROM recdb.covisit_user_items o
    USING recdb_cv c
    WHERE o.user_id = c.user_id AND o.item_id = c.item_id AND c.in_old AND NOT c.in_new;
    INSERT INTO recdb.covisit_user_items (user_id, item_id)
    SELECT c.user_id, c.item_id FROM recdb_cv c WHERE c.in_new AND NOT c.in_old;

    INSERT INTO recdb.covisit_pairs AS p (item_id, other_id, users)
    SELECT d.i, d.j, d.d FROM recdb_cv_pairs d ORDER BY d.i, d.j
    ON CONFLICT (item_id, other_id) DO UPDATE SET users = p.users + excluded.users;
    DELETE FROM recdb.covisit_pairs p
    USING recdb_cv_pairs d
    WHERE p.item_id = d.i AND p.other_id = d.j AND d.d < 0 AND p.users <= 0;

    INSERT INTO recdb.covisit_counts AS c (item_id, users)
    SELECT d.item_id, d.d FROM recdb_cv_counts d WHERE d.d > 0 ORDER BY d.item_id
    ON CONFLICT (item_id) DO UPDATE SET users = c.users + excluded.users;
    UPDATE recdb.covisit_counts c SET users = c.users + d.d
    FROM recdb_cv_counts d WHERE c.item_id = d.item_id AND d.d < 0;
    DELETE FROM recdb.covisit_counts c WHERE c.users <= 0;

    -- Which (list owner, candidate) scores moved, and which way (item_neighbors is still
    -- the old lists here): a changed pair moves with its count; a candidate whose own
    -- count rose falls in the lists that hold it; one whose count fell rises in every
    -- list it is paired with.
    CREATE TEMP TABLE recdb_cv_cand ON COMMIT DROP AS
        SELECT d.i AS owner, d.j AS cand, d.d > 0 AS up FROM recdb_cv_pairs d
        UNION ALL
        SELECT nb.item_id, nb.neighbor_id, false
        FROM recdb_cv_counts c JOIN recdb.item_neighbors nb ON nb.neighbor_id = c.item_id
        WHERE c.d > 0
        UNION ALL
        SELECT p.other_id, p.item_id, true
        FROM recdb_cv_counts c JOIN recdb.covisit_pairs p ON p.item_id = c.item_id
        WHERE c.d < 0;
    -- Per owner touched (or whose own count changed, which scales its whole list): the
    -- old list's length, the lowest new score inside it, whether an item inside lost its
    -- pair, and the best new score of a risen outsider.
    CREATE TEMP TABLE recdb_cv_owner ON COMMIT DROP AS
        SELECT o.owner, count(nb.neighbor_id) AS listed,
               min(p.users::float8 / sqrt(ci.users::float8 * cj.users::float8)) AS lowest,
               count(nb.neighbor_id) > count(p.other_id) AS lost_pair
        FROM (SELECT c.owner FROM recdb_cv_cand c UNION SELECT d.item_id FROM recdb_cv_counts d) o
        LEFT JOIN recdb.item_neighbors nb ON nb.item_id = o.owner
        LEFT JOIN recdb.covisit_pairs p ON p.item_id = nb.item_id AND p.other_id = nb.neighbor_id
        LEFT JOIN recdb.covisit_counts ci ON ci.item_id = p.other_id
        LEFT JOIN recdb.covisit_counts cj ON cj.item_id = p.item_id
        GROUP BY o.owner;
    CREATE TEMP TABLE recdb_cv_risen ON COMMIT DROP AS
        SELECT c.owner, max(p.users::float8 / sqrt(ci.users::float8 * cj.users::float8)) AS best
        FROM (SELECT DISTINCT c.owner, c.cand FROM recdb_cv_cand c WHERE c.up) c
        JOIN recdb.covisit_pairs p ON p.item_id = c.owner AND p.other_id = c.cand
        JOIN recdb.covisit_counts ci ON ci.item_id = c.cand
        JOIN recdb.covisit_counts cj ON cj.item_id = c.owner
        WHERE NOT EXISTS (SELECT 1 FROM recdb.item_neighbors nb
                          WHERE nb.neighbor_id = c.cand AND nb.item_id = c.owner)
        GROUP BY c.owner;
    -- The list keeps its members exactly when every item inside still scores above every
    -- item outside. Outside, only a risen item can score above the old runner-up (scaled
    -- by the owner's own count change, which scales every score of its list); so a
    -- list is rebuilt when an item inside lost its pair, when a risen outsider finds room
    -- (list not full), or when the lowest inside does not beat max(old runner-up, best
    -- risen outsider) (ties included: the id decides there). Any other list touched keeps
    -- its members and only gets its scores rewritten.
    CREATE TEMP TABLE recdb_cv_relist ON COMMIT DROP AS
        SELECT o.owner AS item_id
        FROM recdb_cv_owner o
        LEFT JOIN recdb_cv_risen r ON r.owner = o.owner
        LEFT JOIN recdb.covisit_runner_up ru ON ru.item_id = o.owner
        LEFT JOIN recdb.covisit_counts cj ON cj.item_id = o.owner
        LEFT JOIN recdb_cv_counts dj ON dj.item_id = o.owner
        WHERE o.lost_pair OR cj.item_id IS NULL
           OR (o.listed < nn AND r.best IS NOT NULL)
           OR (o.listed >= nn
               AND greatest(ru.score * sqrt((cj.users - coalesce(dj.d, 0))::float8
                                            / cj.users::float8) * (1 + 1e-9),
                            r.best) >= o.lowest);

    n := recdb.covisit_relist(ARRAY(SELECT r.item_id FROM recdb_cv_relist r));
    UPDATE recdb.item_neighbors nb
    SET score = p.users::float8 / sqrt(ci.users::float8 * cj.users::float8)
    FROM recdb.covisit_pairs p, recdb.covisit_counts ci, recdb.covisit_counts cj
    WHERE nb.item_id IN (SELECT o.owner FROM recdb_cv_owner o
                         WHERE NOT EXISTS (SELECT 1 FROM recdb_cv_relist r
                                           WHERE r.item_id = o.owner))
      AND p.item_id = nb.item_id AND p.other_id = nb.neighbor_id
      AND ci.item_id = nb.neighbor_id AND cj.item_id = nb.item_id
      AND nb.score <> (p.users::float8 / sqrt(ci.users::float8 * cj.users::float8))::real;
    DROP TABLE recdb_cv, recdb_cv_pairs, recdb_cv_counts, recdb_cv_cand, recdb_cv_owner,
               recdb_cv_risen, recdb_cv_relist;
    RETURN n;
END $$;

-- One maintenance step: up to p_batch rows of covisit_queue (users whose vectors the
-- worker rewrote), claimed, applied (covisit_apply) and deleted in this transaction;
-- returns how many rows (0: nothing left). Builds everything (refresh_neighbors) the first
-- time and after the knobs changed. Rows another step holds are skipped, never waited for.
CREATE OR REPLACE FUNCTION recdb.sync_covisitation(p_batch integer) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    uids bigint[];
    claimed_rows integer;
    lists integer;
BEGIN
    IF p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'recdb.sync_covisitation: batch must be >= 1, got %', p_batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('recdb.covisitation'));
    IF NOT EXISTS (SELECT 1 FROM recdb.covisit_state cs JOIN recdb.settings s
                   ON s.covisit_history = cs.history AND s.covisit_neighbors = cs.neighbors) THEN
        PERFORM recdb.refresh_neighbors();
        RETURN 0;
    END IF;
    WITH claimed AS (
        DELETE FROM recdb.covisit_queue q
        WHERE q.id IN (SELECT c.id FROM recdb.covisit_queue c ORDER BY c.id LIMIT p_batch
                       FOR UPDATE SKIP LOCKED)
        RETURNING q.user_id)
    SELECT array_agg(DISTINCT c.user_id), count(*) INTO uids, claimed_rows FROM claimed c;
    IF uids IS NULL THEN
        RETURN 0;
    END IF;
    lists := recdb.covisit_apply(uids);
    PERFORM recdb.record_maintenance('neighbors', clock_timestamp() - started, lists);
    RETURN claimed_rows;
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
