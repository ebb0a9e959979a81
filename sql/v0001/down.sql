-- recdb 0001 downgrade: removes exactly what 0001 created. The vector extension
-- stays when anything outside recdb still uses it.
DROP FUNCTION IF EXISTS public.similar_items(bigint, integer);
DROP FUNCTION IF EXISTS public.rerank(bigint, integer, bigint[], jsonb, boolean);
DROP SCHEMA recdb CASCADE;
DO $$ BEGIN
    IF obj_description((SELECT oid FROM pg_extension WHERE extname = 'vector'), 'pg_extension')
       = 'created by recdb' THEN
        DROP EXTENSION vector;
    END IF;
EXCEPTION WHEN dependent_objects_still_exist THEN
    RAISE NOTICE 'recdb: keeping extension vector, other objects use it';
END $$;
