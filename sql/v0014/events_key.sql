-- rerank() reads a user's history three times per call: the seen-list (every event of the
-- user, for exclude_seen), the co-visitation votes' recent items and the explanation's
-- (recdb.recent_positive_items: covisit_history and explain_history newest positive
-- events). All three go through the events key (user_id, event_id); with the columns
-- they read carried in the key (INCLUDE: item, kind, value) they are index-only reads,
-- which skip the table on pages the visibility map marks all-visible. A heavy user's
-- events lie on as many heap pages as events (every user's events interleave in time):
-- at 10^6 events, the seen-list of users with 500-10,000 events took 1.1 ms p50 /
-- 5.2 ms p95 through the key alone, 0.5 / 2.2 ms index-only.
-- Rebuilding the key holds off writes to recdb.events while it builds (0.8 s at 10^6
-- events on 2 cores).
ALTER TABLE recdb.events
    DROP CONSTRAINT events_pkey,
    ADD CONSTRAINT events_pkey PRIMARY KEY (user_id, event_id) INCLUDE (item_id, kind, value);

-- The visibility map decides whether those reads skip the table. events only grows (and
-- retention deletes whole old ranges): at autovacuum's default, 20% new rows, a 10^7-event
-- log would keep its newest 2 x 10^6 events uncovered; 1% keeps the newest 10^5. VACUUM of
-- an append-only table visits only the pages written since the last one.
ALTER TABLE recdb.events SET (autovacuum_vacuum_insert_scale_factor = 0.01);
