-- The worker reads each claimed user's newest events (at most max_history) to re-encode
-- them, and weighs each by its age (occurred_at): with occurred_at carried in the events
-- key beside item, kind and value (revision 0014), that read is index-only too, instead
-- of one heap page per event (a user's events interleave with everyone else's in time).
-- A worker batch of 500 users of a 10^5-item shop spent 70 ms of ~180 ms reading them
-- through the table, 45 ms index-only. rerank()'s fold reads the user's newest events
-- through events(user_id, txid) and is unchanged.
-- Rebuilding the key holds off writes to recdb.events while it builds (about a second per
-- 10^6 events on 2 cores).
ALTER TABLE recdb.events
    DROP CONSTRAINT events_pkey,
    ADD CONSTRAINT events_pkey PRIMARY KEY (user_id, event_id)
        INCLUDE (item_id, kind, value, occurred_at);
