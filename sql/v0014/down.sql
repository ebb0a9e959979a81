ALTER TABLE recdb.events RESET (autovacuum_vacuum_insert_scale_factor);
ALTER TABLE recdb.events
    DROP CONSTRAINT events_pkey,
    ADD CONSTRAINT events_pkey PRIMARY KEY (user_id, event_id);
