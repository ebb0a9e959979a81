-- recdb 0010: popularity maintained from what changed (recdb.refresh_popularity()), the
-- full rebuild only on demand (recdb.rebuild_popularity(), `recdb refresh --full`).
--
-- Exponential decay makes the sum maintainable: each item keeps its mass,
-- sum(weight * 2^((t - anchor) / popularity_half_life)) over its positive events, against
-- a fixed anchor (popularity_state); the served score mass / max(mass) does not depend on
-- the anchor, so an event is added once, when it is new, and subtracted once, if it is
-- deleted. The normaliser lives in the one state row (scale = 1 / max(mass)), so a step
-- rewrites only the items that changed, never every row; recdb.item_popularity (now a
-- view) serves mass x scale, in [0, 1], the top item at 1, as before.
--
--   popularity          per item: mass, and how many positive events it counts (at 0
--                       the mass is exactly 0: no rounding residue after subtractions);
--                       a row stays when its events go ("no row" = nobody ever did);
--   popularity_state    the knobs it was built with (half-life, positive weights: a change
--                       forces a rebuild), the anchor (epoch seconds), the snapshot of the
--                       last run (counted_through: the events it saw are counted), the
--                       normaliser and the zero threshold;
--   popularity_changes  events deleted or updated since the last run (the events
--                       trigger; deletes are rare and batched): subtracted (and, for an
--                       update, the new version added) if the last run counted them.
CREATE TABLE recdb.popularity (
    item_id      bigint PRIMARY KEY REFERENCES recdb.items (item_id) ON DELETE CASCADE,
    mass         double precision NOT NULL,
    counted      bigint NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX popularity_mass ON recdb.popularity (mass DESC, item_id);

CREATE TABLE recdb.popularity_state (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    half_life       interval,
    weights         jsonb,
    anchor          double precision,
    counted_through pg_snapshot,
    scale           double precision NOT NULL DEFAULT 0,
    zero_below      double precision NOT NULL DEFAULT 0,
    built_at        timestamptz,
    refreshed_at    timestamptz
);

CREATE TABLE recdb.popularity_changes (
    item_id  bigint NOT NULL,
    kind     text NOT NULL,
    at       timestamptz NOT NULL,
    txid     xid8,
    sign     smallint NOT NULL CHECK (sign IN (-1, 1))
);

-- The events new since the last run are those of transactions its snapshot did not see:
-- txid >= xmin of that snapshot. txid grows with insert order, so a BRIN index finds
-- them by block range at almost no cost per INSERT (no btree entry per event). There is
-- no BRIN operator class for xid8: the index is on its bigint value.
-- IF NOT EXISTS: on a large events table it may be built beforehand (CONCURRENTLY).
CREATE INDEX IF NOT EXISTS events_txid ON recdb.events
    USING brin (((txid::text)::bigint)) WITH (pages_per_range = 16, autosummarize = on);

-- What 0009 served stays served until the first refresh rebuilds (half_life NULL forces
-- it): the old scores as masses, scale 1.
INSERT INTO recdb.popularity (item_id, mass, counted, refreshed_at)
SELECT p.item_id, p.score, 0, p.refreshed_at FROM recdb.item_popularity p;
INSERT INTO recdb.popularity_state (id, scale, zero_below) VALUES (true, 1, 0);

-- The old table goes once the functions reading it are replaced (drop_replaced.sql).
ALTER TABLE recdb.item_popularity RENAME TO item_popularity_0009;

-- What every reader outside the served functions reads, as before: score in [0, 1], the
-- top item at 1; an item decayed below 2^-20 of the top (the old 20-half-life window)
-- scores 0 (raw too).
CREATE VIEW recdb.item_popularity AS
SELECT p.item_id,
       CASE WHEN p.mass >= s.zero_below THEN p.mass ELSE 0 END AS raw,
       CASE WHEN p.mass >= s.zero_below THEN p.mass * s.scale ELSE 0 END AS score,
       p.refreshed_at
FROM recdb.popularity p LEFT JOIN recdb.popularity_state s ON true;

GRANT SELECT ON recdb.item_popularity, recdb.popularity, recdb.popularity_state
    TO recdb_app, recdb_worker, recdb_readonly;
GRANT SELECT, INSERT, UPDATE, DELETE ON recdb.popularity, recdb.popularity_state,
    recdb.popularity_changes TO recdb_worker;
