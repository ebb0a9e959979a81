-- recdb 0005: what a hostile app role, a busy app and a crash could still do, closed;
-- erasure on request and retention. Loaded by migrations/versions/0005_hardening.py,
-- followed by the current function definitions (sql/functions/).

-- Pre-existing recdb_* roles are adopted only when they are plain group roles: a role
-- that can log in, is a superuser, creates roles or bypasses RLS would hand those powers
-- to everyone it is granted to. `-x adopt_roles=true` overrides (the DBA checked them).
DO $$
DECLARE
    bad text;
BEGIN
    IF NOT @ADOPT_ROLES@ THEN
        SELECT string_agg(format('%s (%s)', rolname, concat_ws(', ',
                   CASE WHEN rolcanlogin THEN 'LOGIN' END,
                   CASE WHEN rolsuper THEN 'SUPERUSER' END,
                   CASE WHEN rolcreaterole THEN 'CREATEROLE' END,
                   CASE WHEN rolbypassrls THEN 'BYPASSRLS' END)), '; ' ORDER BY rolname)
          INTO bad
        FROM pg_roles
        WHERE rolname IN ('recdb_app', 'recdb_worker', 'recdb_readonly')
          AND (rolcanlogin OR rolsuper OR rolcreaterole OR rolbypassrls);
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'recdb: refusing to adopt existing roles with extra powers: %', bad
                USING HINT = 'ALTER ROLE ... NOLOGIN NOSUPERUSER NOCREATEROLE NOBYPASSRLS, '
                             'or rerun with -x adopt_roles=true if they are meant that way';
        END IF;
    END IF;
END $$;

-- Zero-lag under any commit order: the worker stores the snapshot its events were read
-- in; rerank() folds every event that snapshot did not see (not only ids above the
-- watermark: ids are handed out at INSERT, transactions commit in any order).
-- txid is the inserting transaction (NULL for events older than this migration, all of
-- them committed and seen).
ALTER TABLE recdb.events ADD COLUMN txid xid8;
ALTER TABLE recdb.events ALTER COLUMN txid SET DEFAULT pg_catalog.pg_current_xact_id();
ALTER TABLE recdb.users ADD COLUMN encoded_snapshot pg_snapshot;

-- Bounds on time: events from the future beyond this skew are rejected.
ALTER TABLE recdb.settings
    ADD COLUMN max_future_skew interval NOT NULL DEFAULT '5 minutes'
        CHECK (max_future_skew >= interval '0'),
    -- Events older than this are deleted by the worker's maintenance (NULL = keep all).
    ADD COLUMN event_retention interval CHECK (event_retention > interval '0');

-- Erasure audit: when, who, how much; never whose.
CREATE TABLE recdb.erasures (
    erasure_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    called_by   text NOT NULL DEFAULT current_user,
    counts      jsonb NOT NULL
);

-- When each maintenance job last finished (popularity, neighbors, retention).
CREATE TABLE recdb.maintenance (
    job          text PRIMARY KEY,
    finished_at  timestamptz NOT NULL,
    seconds      double precision NOT NULL,
    rows         bigint NOT NULL
);

CREATE VIEW recdb.maintenance_status AS
SELECT (SELECT max(at) FROM recdb.erasures) AS last_erasure_at,
       (SELECT min(finished_at) FROM recdb.maintenance
         WHERE job IN ('popularity', 'neighbors')) AS maintained_at,
       (SELECT count(*) FROM recdb.maintenance WHERE job IN ('popularity', 'neighbors')) = 2
           AS both_jobs_ran;

-- The app writes exactly the columns an app owns; ids, timestamps it does not own and
-- every vector or bookkeeping column stay the server's and the worker's.
REVOKE INSERT ON recdb.items, recdb.events FROM recdb_app;
GRANT INSERT (item_id, title, body, attrs, available) ON recdb.items TO recdb_app;
GRANT INSERT (user_id, item_id, kind, value, occurred_at) ON recdb.events TO recdb_app;

GRANT SELECT ON recdb.erasures, recdb.maintenance, recdb.maintenance_status
    TO recdb_worker, recdb_readonly;
GRANT INSERT, UPDATE ON recdb.maintenance TO recdb_worker;
