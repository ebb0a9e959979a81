ALTER TABLE recdb.events
    DROP CONSTRAINT events_pkey,
    ADD CONSTRAINT events_pkey PRIMARY KEY (user_id, event_id) INCLUDE (item_id, kind, value);
