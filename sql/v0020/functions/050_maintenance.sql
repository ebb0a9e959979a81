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
-- of a kind with weight > 0 counts as consumption, whatever its value, decayed by
-- popularity_half_life. Maintained from what changed (revision 0010, tables in
-- sql/v0010/incremental_popularity.sql):
--
-- * Exponential decay makes the sum maintainable. recdb.popularity.mass is
--   sum(weight * 2^((t - anchor) / half_life)) over the item's events, against a fixed
--   anchor (popularity_state.anchor, epoch seconds); the served score mass / max(mass) is
--   the same whatever the anchor (it is what decaying everything from the newest event
--   gave), so an event is added once and never revisited. The anchor moves (every mass
--   multiplied by a power of two, exactly) only when the masses leave 2^+-64, i.e. after
--   about 64 half-lives: rare, and the only step that touches every row.
-- * The normaliser is one row: scale = 1 / max(mass), read by the served functions and
--   the recdb.item_popularity view. Storing score per row would rewrite every row each
--   run (the max grows with every new event); reading one more one-row table per call
--   does not. Below 2^-20 of the top (about the old 20-half-life window) a score is 0.
-- * t is least(occurred_at, recorded_at): an event dated ahead of the server clock (up to
--   max_future_skew; the events trigger refuses more) counts as of when it was recorded,
--   so one outlier cannot decay everyone else; both columns are fixed per row, so a full
--   rebuild gives the same t as the step that counted the event.
-- * "New since the last run" costs the INSERT nothing: events.txid (a column default) is
--   compared with the snapshot the last run stored (popularity_state.counted_through);
--   new are the events of transactions it did not see, found through the BRIN index
--   events_txid (txid >= that snapshot's xmin: a transaction still open at one run is
--   counted by the first run after it commits, and the range stays open back to it).
-- * Deleted and updated events: the events trigger (UPDATE/DELETE only) queues their old
--   versions (-1) and an update's new one (+1) in popularity_changes; a run applies a
--   queued row only if the event was counted (its txid visible in counted_through):
--   retention, forget_user() and any DELETE the app role may do leave popularity at the
--   next run. The new events and the queued rows are read in one statement (one
--   snapshot), so an event deleted concurrently is either counted and its delete applied
--   by a later run, or neither. Per item, `counted` events: at 0 the mass is exactly 0.
--   TRUNCATE (no row triggers) and session_replication_role = replica (no triggers) are
--   the owner's: TRUNCATE forces a rebuild; otherwise `recdb refresh --full`.
-- * Called in a transaction that wrote events itself (a bulk load refreshing before it
--   commits), a run counts them too (no other snapshot can say they were counted), and
--   then leaves counted_through NULL: the next run rebuilds.
-- Cost of a step: the new events' block ranges (16 pages each; ranges autovacuum has not
-- summarised yet, autosummarize = on, are read whole), the queued rows, and the rows of
-- the items they touch; of a rebuild: every event once. Both give the same scores up to
-- float rounding (tests/worker/test_popularity.py).

-- The positive weights popularity is built with (a change forces a rebuild).
CREATE OR REPLACE FUNCTION recdb.popularity_weights() RETURNS jsonb
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(jsonb_object_agg(k.kind, k.weight), '{}'::jsonb)
    FROM recdb.event_kinds k WHERE k.weight > 0;
END;

-- Moves the anchor by p_shift half-lives (an integer: every mass is multiplied by a power
-- of two, exactly; one that would fall below 2^-900 becomes 0).
CREATE OR REPLACE FUNCTION recdb.popularity_rebase(p_shift double precision, p_hl double precision)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE recdb.popularity p
    SET mass = CASE WHEN ln(p.mass) / ln(2.0::float8) - p_shift < -900 THEN 0
                    ELSE p.mass * power(2.0::float8, -p_shift) END
    WHERE p.mass > 0;
    UPDATE recdb.popularity_state s SET anchor = s.anchor + p_shift * p_hl;
END $$;

-- The normaliser from the top mass (one index probe), rebasing first if the masses left
-- 2^+-64.
CREATE OR REPLACE FUNCTION recdb.popularity_normalise(p_hl double precision) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    top double precision;
BEGIN
    SELECT p.mass INTO top FROM recdb.popularity p ORDER BY p.mass DESC LIMIT 1;
    IF top > 18446744073709551616.0::float8 OR (top > 0 AND top < 5.421010862427522e-20::float8) THEN
        PERFORM recdb.popularity_rebase(floor(ln(top) / ln(2.0::float8)), p_hl);
        SELECT p.mass INTO top FROM recdb.popularity p ORDER BY p.mass DESC LIMIT 1;
    END IF;
    UPDATE recdb.popularity_state s
    SET scale = CASE WHEN top > 0 THEN 1 / top ELSE 0 END,
        zero_below = CASE WHEN top > 0 THEN top * 9.5367431640625e-07::float8 ELSE 0 END;
END $$;

-- The full rebuild: every event the snapshot taken here sees, once; queued changes are
-- dropped (the events read already show them). Items whose events are all gone keep a
-- row at 0. Returns the items with events.
CREATE OR REPLACE FUNCTION recdb.rebuild_popularity() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    hl_iv interval;
    hl double precision;
    snap pg_snapshot;
    own xid8;
    anchor double precision;
    mine boolean;
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('recdb.refresh_popularity'));
    PERFORM 1 FROM recdb.popularity_state s FOR UPDATE;
    own := pg_current_xact_id_if_assigned();
    SELECT s.popularity_half_life, greatest(extract(epoch FROM s.popularity_half_life), 1)::float8
    INTO hl_iv, hl FROM recdb.settings s;
    snap := pg_current_snapshot();
    -- The newest time through its index (the old reference: never past now()).
    SELECT date_part('epoch', least(max(e.occurred_at), now())) INTO anchor FROM recdb.events e;
    anchor := coalesce(anchor, date_part('epoch', now()));

    CREATE TEMP TABLE recdb_pop_full
        (item_id bigint PRIMARY KEY, mass double precision, counted bigint, mine bigint)
        ON COMMIT DROP;
    WITH dropped AS (DELETE FROM recdb.popularity_changes)
    INSERT INTO recdb_pop_full (item_id, mass, counted, mine)
    SELECT e.item_id,
           sum(k.weight * CASE WHEN x.x < -900 THEN 0 ELSE power(2.0::float8, x.x) END),
           count(*), count(*) FILTER (WHERE e.txid = own)
    FROM recdb.events e
    JOIN recdb.event_kinds k ON k.kind = e.kind AND k.weight > 0
    CROSS JOIN LATERAL (SELECT (date_part('epoch', least(e.occurred_at, e.recorded_at)) - anchor)
                               / hl AS x) x
    WHERE e.txid IS NULL OR pg_visible_in_snapshot(e.txid, snap) OR e.txid = own
    GROUP BY e.item_id;
    mine := EXISTS (SELECT 1 FROM recdb_pop_full t WHERE t.mine > 0);

    UPDATE recdb.popularity p SET mass = 0, counted = 0, refreshed_at = now()
    WHERE (p.mass <> 0 OR p.counted <> 0)
      AND NOT EXISTS (SELECT 1 FROM recdb_pop_full t WHERE t.item_id = p.item_id);
    INSERT INTO recdb.popularity AS p (item_id, mass, counted, refreshed_at)
    SELECT t.item_id, t.mass, t.counted, now() FROM recdb_pop_full t
    ON CONFLICT (item_id) DO UPDATE
        SET mass = excluded.mass, counted = excluded.counted, refreshed_at = excluded.refreshed_at;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE recdb_pop_full;

    INSERT INTO recdb.popularity_state AS s
        (id, half_life, weights, anchor, counted_through, built_at, refreshed_at)
    VALUES (true, hl_iv, recdb.popularity_weights(), anchor, CASE WHEN NOT mine THEN snap END,
            clock_timestamp(), clock_timestamp())
    ON CONFLICT (id) DO UPDATE
        SET half_life = excluded.half_life, weights = excluded.weights,
            anchor = excluded.anchor, counted_through = excluded.counted_through,
            built_at = excluded.built_at, refreshed_at = excluded.refreshed_at;
    PERFORM recdb.popularity_normalise(hl);
    PERFORM recdb.record_maintenance('popularity', clock_timestamp() - started, n);
    RETURN n;
END $$;

-- One incremental step (refresh_popularity's body): the events of transactions p_old did
-- not see and p_new did (and the caller's own), plus the queued changes of events p_old
-- saw, into the masses; then counted_through = p_new (NULL if its own were counted).
-- enable_seqscan = off: whatever the statistics say (a table not analysed since a bulk
-- load), the events are read through events_txid and the touched rows through their keys,
-- never by scanning the table. Returns the items changed.
CREATE OR REPLACE FUNCTION recdb.popularity_step(
    p_old pg_snapshot, p_new pg_snapshot, p_anchor double precision, p_hl double precision
) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
    own xid8 := pg_current_xact_id_if_assigned();
    lo bigint := (pg_snapshot_xmin(p_old)::text)::bigint;
    hi double precision;
    n integer;
BEGIN
    lo := least(lo, (own::text)::bigint);
    CREATE TEMP TABLE recdb_pop_rows
        (item_id bigint, w double precision, x double precision, sign integer, mine boolean)
        ON COMMIT DROP;
    -- One statement, one snapshot: the queued changes it claims and the events it reads.
    WITH claimed AS (
        DELETE FROM recdb.popularity_changes c
        RETURNING c.item_id, c.kind, c.at, c.txid, c.sign),
    changed AS (
        SELECT c.item_id, c.kind, c.at, c.sign::integer AS sign, false AS mine FROM claimed c
        WHERE c.txid IS NULL OR pg_visible_in_snapshot(c.txid, p_old)
        UNION ALL
        SELECT e.item_id, e.kind, least(e.occurred_at, e.recorded_at), 1, e.txid = own
        FROM recdb.events e
        WHERE (e.txid::text)::bigint >= lo
          AND (pg_visible_in_snapshot(e.txid, p_new) AND NOT pg_visible_in_snapshot(e.txid, p_old)
               OR e.txid = own))
    INSERT INTO recdb_pop_rows (item_id, w, x, sign, mine)
    SELECT c.item_id, k.weight, (date_part('epoch', c.at) - p_anchor) / p_hl, c.sign,
           coalesce(c.mine, false)
    FROM changed c JOIN recdb.event_kinds k ON k.kind = c.kind AND k.weight > 0;

    -- New events far past the anchor: move it first (masses stay below 2^600).
    SELECT max(r.x) INTO hi FROM recdb_pop_rows r WHERE r.sign > 0;
    IF hi > 512 THEN
        PERFORM recdb.popularity_rebase(floor(hi), p_hl);
        UPDATE recdb_pop_rows r SET x = r.x - floor(hi);
    END IF;

    CREATE TEMP TABLE recdb_pop_delta ON COMMIT DROP AS
    SELECT r.item_id,
           sum(r.sign * r.w * CASE WHEN r.x < -900 THEN 0 ELSE power(2.0::float8, r.x) END) AS mass,
           sum(r.sign)::bigint AS counted
    FROM recdb_pop_rows r GROUP BY r.item_id;
    ANALYZE recdb_pop_delta;

    UPDATE recdb.popularity p
    SET counted = p.counted + d.counted,
        mass = CASE WHEN p.counted + d.counted <= 0 THEN 0 ELSE greatest(p.mass + d.mass, 0) END,
        refreshed_at = now()
    FROM recdb_pop_delta d
    WHERE p.item_id = d.item_id;
    -- Items counted for the first time (an item deleted meanwhile has no row to take
    -- its subtractions, nor gets one).
    INSERT INTO recdb.popularity (item_id, mass, counted, refreshed_at)
    SELECT d.item_id, greatest(d.mass, 0), d.counted, now()
    FROM recdb_pop_delta d
    WHERE d.counted > 0
      AND NOT EXISTS (SELECT 1 FROM recdb.popularity p WHERE p.item_id = d.item_id)
      AND EXISTS (SELECT 1 FROM recdb.items i WHERE i.item_id = d.item_id);
    SELECT count(*) INTO n FROM recdb_pop_delta;
    UPDATE recdb.popularity_state s
    SET counted_through = CASE WHEN NOT EXISTS (SELECT 1 FROM recdb_pop_rows r WHERE r.mine)
                               THEN p_new END,
        refreshed_at = clock_timestamp();
    DROP TABLE recdb_pop_rows, recdb_pop_delta;
    RETURN n;
END $$;

-- Maintenance's popularity job: one step (popularity_step) from the last run's snapshot
-- to one taken now, or the full rebuild (rebuild_popularity) the first time, after the
-- half-life or the positive weights changed, or after the events were truncated.
-- Returns the items changed (rebuilt). Runs one at a time (an advisory lock; the state
-- row is locked too, so a caller in a snapshot older than the last run fails instead of
-- counting twice).
CREATE OR REPLACE FUNCTION recdb.refresh_popularity() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    st recdb.popularity_state;
    hl double precision;
    snap pg_snapshot;
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('recdb.refresh_popularity'));
    SELECT s.* INTO st FROM recdb.popularity_state s FOR UPDATE;
    IF st.counted_through IS NULL
       OR st.half_life IS DISTINCT FROM (SELECT s.popularity_half_life FROM recdb.settings s)
       OR st.weights IS DISTINCT FROM recdb.popularity_weights() THEN
        RETURN recdb.rebuild_popularity();
    END IF;
    hl := greatest(extract(epoch FROM st.half_life), 1)::float8;
    snap := pg_current_snapshot();
    n := recdb.popularity_step(st.counted_through, snap, st.anchor, hl);
    PERFORM recdb.popularity_normalise(hl);
    PERFORM recdb.record_maintenance('popularity', clock_timestamp() - started, n);
    RETURN n;
END $$;

-- TRUNCATE fires no row trigger, so no user is queued for what it removed: the next
-- popularity and co-visitation steps rebuild from the events instead of applying the
-- users queued afterwards against sets that no longer exist (revision 0012; before it,
-- co-visitation kept every truncated user's pairs). (Only the owner truncates.)
CREATE OR REPLACE FUNCTION recdb.events_truncated() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE recdb.popularity_state s SET counted_through = NULL;
    DELETE FROM recdb.covisit_state;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER events_truncated AFTER TRUNCATE ON recdb.events
    FOR EACH STATEMENT EXECUTE FUNCTION recdb.events_truncated();

-- Co-visitation neighbours: two items are close when the same users have them among
-- their recent positive items (the distinct items of covisit_history newest positive
-- events each, recdb.recent_positive_items); the score is the cosine of the two user
-- sets, users(i, j) / sqrt(users(i) * users(j)), and each item keeps its
-- covisit_neighbors best (ties: lower id first).
--
-- The counts behind the cosine live in tables (revision 0007: covisit_user_items,
-- covisit_counts, covisit_pairs), so maintenance applies only the users whose sets
-- changed (sync_covisitation) and checks only the lists whose boundary a change crossed
-- (covisit_apply). refresh_neighbors() is the full rebuild (`recdb refresh --full`, or
-- when the knobs changed); both give the same rows.
--
-- Stored without the member's count (revision 0011), so that a popular item's count
-- change rewrites nothing in the thousands of lists that hold it:
-- * item_neighbors(neighbor_id = i, item_id = j).score = users(i, j) / sqrt(users(j)):
--   rerank() divides by sqrt(users(i)) once per history item (recdb.covisit_votes). A
--   change of users(j) rewrites j's own rows only.
-- * Inside j's list items rank by the key users(i, j) / sqrt(users(i)) (the cosine times
--   sqrt(users(j)), the same order), then by lower id: (key, id) pairs never tie, so a
--   bound compared as a pair proves or refutes a list without re-ranking it.
-- * covisit_runner_up holds per list its gate, the best (key, id) left out of the list
--   (or a pair above it), and its bound, the best left out of the list and its reserve
--   (covisit_reserve: as many next-best; NULL: nothing else is paired). No row: every
--   pair is listed.

-- Item j's list from its whole pair range (ranked by key, then id): the best
-- covisit_neighbors, the reserve behind them, the gate and the bound. One index range of
-- covisit_pairs per item.
CREATE OR REPLACE FUNCTION recdb.covisit_relist(p_items bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    nn integer;
    n integer;
BEGIN
    SELECT s.covisit_neighbors INTO nn FROM recdb.settings s;
    DELETE FROM recdb.item_neighbors nb WHERE nb.item_id = ANY (p_items);
    DELETE FROM recdb.covisit_reserve rs WHERE rs.item_id = ANY (p_items);
    DELETE FROM recdb.covisit_runner_up ru WHERE ru.item_id = ANY (p_items);
    CREATE TEMP TABLE recdb_cv_ranked ON COMMIT DROP AS
    SELECT t.i, t.j, t.k, t.s, t.r FROM (
        SELECT p.other_id AS i, p.item_id AS j,
               p.users::float8 / sqrt(ci.users::float8) AS k,
               p.users::float8 / sqrt(cj.users::float8) AS s,
               row_number() OVER (PARTITION BY p.item_id
                                  ORDER BY p.users::float8 / sqrt(ci.users::float8) DESC,
                                           p.other_id) AS r
        FROM recdb.covisit_pairs p
        JOIN recdb.covisit_counts ci ON ci.item_id = p.other_id
        JOIN recdb.covisit_counts cj ON cj.item_id = p.item_id
        WHERE p.item_id = ANY (p_items)
    ) t
    WHERE t.r <= 2 * nn + 1;
    INSERT INTO recdb.item_neighbors (neighbor_id, item_id, score)
    SELECT t.i, t.j, t.s FROM recdb_cv_ranked t WHERE t.r <= nn;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO recdb.covisit_reserve (item_id, neighbor_id, score)
    SELECT t.j, t.i, t.k FROM recdb_cv_ranked t WHERE t.r > nn AND t.r <= 2 * nn;
    INSERT INTO recdb.covisit_runner_up (item_id, gate, gate_id, score, neighbor_id)
    SELECT g.j, g.k, g.i, b.k, b.i
    FROM recdb_cv_ranked g
    LEFT JOIN recdb_cv_ranked b ON b.j = g.j AND b.r = 2 * nn + 1
    WHERE g.r = nn + 1;
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
             recdb.covisit_runner_up, recdb.covisit_reserve;
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
-- membership, counts and pair counts change by what each set gained or lost; then every
-- key that moved is checked against its list's gate, and only a list where one crossed
-- it is reopened: proved from what is known against the bound, or re-ranked over its
-- pair range when that cannot prove it. Rows are written only where they change.
-- Cost: per user, (items gained or lost) x (set size); reads (no writes) of the lists
-- holding an item whose count rose and of the pair range of one whose count fell; the
-- reopened lists (about 20 rows each) and the re-ranked lists' pair ranges (rare: the
-- reserve covers most). Callers hold the covisitation advisory lock. Returns how many
-- list rows were re-ranked. enable_seqscan = off: however many lists a step reopens,
-- covisit_pairs (the biggest table) is read through its key, never scanned whole (a hash
-- join over it cost seconds per step at 10^6 events, and grows with the log).
CREATE OR REPLACE FUNCTION recdb.covisit_apply(p_users bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
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
    -- Temp tables have no statistics until analysed: without them the planner guesses,
    -- and a guess of one row joined a whole index range per changed pair (seconds per
    -- step on a 10^6-event log, growing with the log, not with the change).
    ANALYZE recdb_cv, recdb_cv_pairs, recdb_cv_counts;

    DELETE FROM recdb.covisit_user_items o
    USING recdb_cv c
    WHERE o.user_id = c.user_id AND o.item_id = c.item_id AND c.in_old AND NOT c.in_new;
    INSERT INTO recdb.covisit_user_items (user_id, item_id)
    SELECT c.user_id, c.item_id FROM recdb_cv c WHERE c.in_new AND NOT c.in_old;

    -- The changed pairs' counts now, kept for the checks below (no second lookup).
    CREATE TEMP TABLE recdb_cv_now (i bigint, j bigint, users integer) ON COMMIT DROP;
    WITH up AS (
        INSERT INTO recdb.covisit_pairs AS p (item_id, other_id, users)
        SELECT d.i, d.j, d.d FROM recdb_cv_pairs d ORDER BY d.i, d.j
        ON CONFLICT (item_id, other_id) DO UPDATE SET users = p.users + excluded.users
        RETURNING p.item_id, p.other_id, p.users)
    INSERT INTO recdb_cv_now (i, j, users) SELECT up.item_id, up.other_id, up.users FROM up;
    -- Driven from the pairs that lost users (key lookups), never a scan of covisit_pairs.
    DELETE FROM recdb.covisit_pairs p
    WHERE (p.item_id, p.other_id) IN (SELECT d.i, d.j FROM recdb_cv_pairs d WHERE d.d < 0)
      AND p.users <= 0;

    INSERT INTO recdb.covisit_counts AS c (item_id, users)
    SELECT d.item_id, d.d FROM recdb_cv_counts d WHERE d.d > 0 ORDER BY d.item_id
    ON CONFLICT (item_id) DO UPDATE SET users = c.users + excluded.users;
    UPDATE recdb.covisit_counts c SET users = c.users + d.d
    FROM recdb_cv_counts d WHERE c.item_id = d.item_id AND d.d < 0;
    DELETE FROM recdb.covisit_counts c
    USING recdb_cv_counts d WHERE c.item_id = d.item_id AND d.d < 0 AND c.users <= 0;

    -- Whose key moved in which list (item_neighbors and the bounds are still the old
    -- lists here): a changed pair, in its owner's list; an item whose count rose falls in
    -- every list: only where it is listed can that matter; one whose count fell rises in
    -- every list it is paired with (its pair range, which brings the pair counts along:
    -- users(i, j) = users(j, i)).
    CREATE TEMP TABLE recdb_cv_moved ON COMMIT DROP AS
        SELECT m.owner, m.cand, bool_or(m.paired) AS paired, max(m.users) AS users
        FROM (SELECT d.i AS owner, d.j AS cand, true AS paired,
                     CASE WHEN d.users > 0 THEN d.users END AS users
              FROM recdb_cv_now d
              UNION ALL
              SELECT nb.item_id, nb.neighbor_id, false, NULL
              FROM recdb_cv_counts c JOIN recdb.item_neighbors nb ON nb.neighbor_id = c.item_id
              WHERE c.d > 0
              UNION ALL
              SELECT p.other_id, p.item_id, false, p.users
              FROM recdb_cv_counts c JOIN recdb.covisit_pairs p ON p.item_id = c.item_id
              WHERE c.d < 0) m
        GROUP BY m.owner, m.cand;
    ANALYZE recdb_cv_moved;
    -- Each with its key now (NULL: the pair is gone), whether it is listed, and its list's
    -- gate and bound.
    CREATE TEMP TABLE recdb_cv_check ON COMMIT DROP AS
        SELECT m.owner, m.cand, m.paired,
               EXISTS (SELECT 1 FROM recdb.item_neighbors nb
                       WHERE nb.neighbor_id = m.cand AND nb.item_id = m.owner) AS listed,
               coalesce(m.users, (SELECT p.users FROM recdb.covisit_pairs p
                                  WHERE p.item_id = m.owner AND p.other_id = m.cand))::float8
                   / sqrt(ci.users::float8) AS k,
               ru.item_id IS NOT NULL AS has_gate, ru.gate, ru.gate_id, ru.score AS b,
               ru.neighbor_id AS b_id
        FROM recdb_cv_moved m
        LEFT JOIN recdb.covisit_counts ci ON ci.item_id = m.cand
        LEFT JOIN recdb.covisit_runner_up ru ON ru.item_id = m.owner;
    ANALYZE recdb_cv_check;
    -- A list stays what it is while every listed (key, id) beats the gate and nothing left
    -- out passes it: a listed item that lost its pair or fell to the gate, or an outsider
    -- that rose past it (or appeared in a list with nothing left out) reopens the list.
    CREATE TEMP TABLE recdb_cv_fix ON COMMIT DROP AS
        SELECT DISTINCT c.owner, c.has_gate, c.b, c.b_id
        FROM recdb_cv_check c
        WHERE CASE WHEN c.listed
                   THEN c.k IS NULL OR (c.has_gate AND (c.k, -c.cand) <= (c.gate, -c.gate_id))
                   ELSE c.k IS NOT NULL AND (NOT c.has_gate OR (c.k, -c.cand) > (c.gate, -c.gate_id))
              END;
    ANALYZE recdb_cv_fix;
    -- A reopened list is ranked from what is known: its listed and reserved items and the
    -- outsiders that rose past its bound (every other item is at most the bound).
    CREATE TEMP TABLE recdb_cv_known ON COMMIT DROP AS
        SELECT k.owner, k.cand,
               p.users::float8 / sqrt(ci.users::float8) AS k,
               p.users::float8 / sqrt(cj.users::float8) AS s,
               row_number() OVER (PARTITION BY k.owner
                                  ORDER BY p.users::float8 / sqrt(ci.users::float8) DESC,
                                           k.cand) AS r
        FROM (SELECT nb.item_id AS owner, nb.neighbor_id AS cand
              FROM recdb_cv_fix f JOIN recdb.item_neighbors nb ON nb.item_id = f.owner
              UNION
              SELECT rs.item_id, rs.neighbor_id
              FROM recdb_cv_fix f JOIN recdb.covisit_reserve rs ON rs.item_id = f.owner
              UNION
              SELECT c.owner, c.cand
              FROM recdb_cv_check c JOIN recdb_cv_fix f ON f.owner = c.owner
              WHERE NOT c.listed AND c.k IS NOT NULL
                AND (f.b IS NULL OR (c.k, -c.cand) > (f.b, -f.b_id))) k
        JOIN recdb.covisit_pairs p ON p.item_id = k.owner AND p.other_id = k.cand
        JOIN recdb.covisit_counts ci ON ci.item_id = k.cand
        JOIN recdb.covisit_counts cj ON cj.item_id = k.owner;
    ANALYZE recdb_cv_known;
    -- The known best covisit_neighbors are the list when the last of them beats the
    -- bound (or nothing is left out: no bound). Only the others are ranked again over
    -- their whole pair range.
    CREATE TEMP TABLE recdb_cv_relist ON COMMIT DROP AS
        SELECT f.owner AS item_id
        FROM recdb_cv_fix f
        LEFT JOIN recdb_cv_known k ON k.owner = f.owner AND k.r = nn
        WHERE f.b IS NOT NULL AND (k.owner IS NULL OR (k.k, -k.cand) <= (f.b, -f.b_id));
    ANALYZE recdb_cv_relist;
    n := recdb.covisit_relist(ARRAY(SELECT r.item_id FROM recdb_cv_relist r));
    -- The proved ones: the list and the reserve (the known items behind it that beat the
    -- bound) from what is known; rows change only where they differ (rerank() reads them
    -- meanwhile).
    CREATE TEMP TABLE recdb_cv_kept ON COMMIT DROP AS
        SELECT k.owner, k.cand, k.k, k.s, k.r,
               k.r <= nn AS listed,
               k.r > nn AND k.r <= 2 * nn AND (f.b IS NULL OR (k.k, -k.cand) > (f.b, -f.b_id))
                   AS reserved
        FROM recdb_cv_known k JOIN recdb_cv_fix f ON f.owner = k.owner
        WHERE NOT EXISTS (SELECT 1 FROM recdb_cv_relist r WHERE r.item_id = k.owner);
    ANALYZE recdb_cv_kept;
    DELETE FROM recdb.item_neighbors nb
    USING recdb_cv_fix f
    WHERE nb.item_id = f.owner
      AND NOT EXISTS (SELECT 1 FROM recdb_cv_relist r WHERE r.item_id = f.owner)
      AND NOT EXISTS (SELECT 1 FROM recdb_cv_kept k
                      WHERE k.owner = nb.item_id AND k.cand = nb.neighbor_id AND k.listed);
    INSERT INTO recdb.item_neighbors AS nb (neighbor_id, item_id, score)
    SELECT k.cand, k.owner, k.s FROM recdb_cv_kept k WHERE k.listed
    ON CONFLICT (item_id, neighbor_id) DO UPDATE SET score = excluded.score
        WHERE nb.score IS DISTINCT FROM excluded.score;
    DELETE FROM recdb.covisit_reserve rs
    USING recdb_cv_fix f
    WHERE rs.item_id = f.owner
      AND NOT EXISTS (SELECT 1 FROM recdb_cv_relist r WHERE r.item_id = f.owner)
      AND NOT EXISTS (SELECT 1 FROM recdb_cv_kept k
                      WHERE k.owner = rs.item_id AND k.cand = rs.neighbor_id AND k.reserved);
    INSERT INTO recdb.covisit_reserve AS rs (item_id, neighbor_id, score)
    SELECT k.owner, k.cand, k.k FROM recdb_cv_kept k WHERE k.reserved
    ON CONFLICT (item_id, neighbor_id) DO UPDATE SET score = excluded.score
        WHERE rs.score IS DISTINCT FROM excluded.score;
    -- The gate: the best of the first left out and the old bound; the bound: the best of
    -- the first behind the reserve and the old bound (what the reserve dropped is at most
    -- the old bound). No gate: everything is listed.
    DELETE FROM recdb.covisit_runner_up ru
    USING recdb_cv_fix f
    WHERE ru.item_id = f.owner
      AND NOT EXISTS (SELECT 1 FROM recdb_cv_relist r WHERE r.item_id = f.owner);
    INSERT INTO recdb.covisit_runner_up (item_id, gate, gate_id, score, neighbor_id)
    SELECT x.owner,
           CASE WHEN x.b IS NULL OR (x.g, -x.g_id) > (x.b, -x.b_id) THEN x.g ELSE x.b END,
           CASE WHEN x.b IS NULL OR (x.g, -x.g_id) > (x.b, -x.b_id) THEN x.g_id ELSE x.b_id END,
           CASE WHEN x.b IS NULL OR (x.r, -x.r_id) > (x.b, -x.b_id) THEN x.r ELSE x.b END,
           CASE WHEN x.b IS NULL OR (x.r, -x.r_id) > (x.b, -x.b_id) THEN x.r_id ELSE x.b_id END
    FROM (SELECT f.owner, f.b, f.b_id, g.k AS g, g.cand AS g_id, r.k AS r, r.cand AS r_id
          FROM recdb_cv_fix f
          LEFT JOIN recdb_cv_kept g ON g.owner = f.owner AND g.r = nn + 1
          LEFT JOIN recdb_cv_kept r ON r.owner = f.owner AND r.r = 2 * nn + 1
          WHERE NOT EXISTS (SELECT 1 FROM recdb_cv_relist l WHERE l.item_id = f.owner)) x
    WHERE x.g IS NOT NULL OR x.b IS NOT NULL;

    -- Lists not reopened: a listed pair whose count changed, and every row of an item
    -- whose own count changed, get their score now (users(j) scales its list alike).
    UPDATE recdb.item_neighbors nb SET score = p.users::float8 / sqrt(cj.users::float8)
    FROM (SELECT c.owner, c.cand FROM recdb_cv_check c WHERE c.listed AND c.paired
          UNION
          SELECT o.item_id, o.neighbor_id
          FROM recdb_cv_counts d JOIN recdb.item_neighbors o ON o.item_id = d.item_id) t
    JOIN recdb.covisit_pairs p ON p.item_id = t.owner AND p.other_id = t.cand
    JOIN recdb.covisit_counts cj ON cj.item_id = t.owner
    WHERE nb.neighbor_id = t.cand AND nb.item_id = t.owner
      AND NOT EXISTS (SELECT 1 FROM recdb_cv_fix f WHERE f.owner = t.owner)
      AND nb.score <> (p.users::float8 / sqrt(cj.users::float8))::real;  -- score is a real
    -- ... and an outsider that rose past the bound (not past the gate) becomes the bound.
    UPDATE recdb.covisit_runner_up ru SET score = x.k, neighbor_id = x.cand
    FROM (SELECT DISTINCT ON (c.owner) c.owner, c.cand, c.k
          FROM recdb_cv_check c
          WHERE NOT c.listed AND c.k IS NOT NULL AND c.has_gate
            AND (c.b IS NULL OR (c.k, -c.cand) > (c.b, -c.b_id))
            AND NOT EXISTS (SELECT 1 FROM recdb_cv_fix f WHERE f.owner = c.owner)
            AND NOT EXISTS (SELECT 1 FROM recdb.covisit_reserve rs
                            WHERE rs.item_id = c.owner AND rs.neighbor_id = c.cand)
          ORDER BY c.owner, c.k DESC, c.cand) x
    WHERE ru.item_id = x.owner;
    DROP TABLE recdb_cv, recdb_cv_pairs, recdb_cv_now, recdb_cv_counts, recdb_cv_moved,
               recdb_cv_check, recdb_cv_fix, recdb_cv_known, recdb_cv_relist, recdb_cv_kept;
    RETURN n;
END $$;

-- One maintenance step: up to p_batch rows of covisit_queue (users whose vectors the
-- worker rewrote), claimed, applied (covisit_apply) and deleted in this transaction;
-- returns how many rows (0: nothing left). Builds everything (refresh_neighbors) the first
-- time and after the knobs changed. Rows another step holds are skipped, never waited for.
-- A step that finds nothing to apply is recorded too (revision 0015): the lists are
-- current, and the maintenance schedule counts from it (before, an idle shop's
-- maintenance thread found the job overdue forever and ran back to back).
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
        PERFORM recdb.record_maintenance('neighbors', clock_timestamp() - started, 0);
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
