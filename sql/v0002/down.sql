-- recdb 0002 downgrade: revoke everything 0002 granted; drop the roles if recdb created
-- them and no other database still uses them.
REVOKE ALL ON ALL TABLES IN SCHEMA recdb FROM recdb_app, recdb_worker, recdb_readonly;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA recdb FROM recdb_app, recdb_worker, recdb_readonly;
REVOKE USAGE ON SCHEMA recdb FROM recdb_app, recdb_worker, recdb_readonly;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA recdb TO PUBLIC;
ALTER FUNCTION recdb.items_changed() SECURITY INVOKER;
ALTER FUNCTION recdb.events_changed() SECURITY INVOKER;

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['recdb_app', 'recdb_worker', 'recdb_readonly'] LOOP
        IF shobj_description((SELECT oid FROM pg_roles WHERE rolname = r), 'pg_authid')
           = 'created by recdb' THEN
            BEGIN
                EXECUTE format('DROP ROLE %I', r);
            EXCEPTION WHEN dependent_objects_still_exist THEN
                RAISE NOTICE 'recdb: keeping role %, other databases use it', r;
            END;
        END IF;
    END LOOP;
END $$;
