-- recdb 0007: the ledger of `recdb import` (recdb/importer/). Loaded by
-- migrations/versions/0007_incremental.py; undone by imports_down.sql.
--
-- One row per chunk of a file, written in the transaction that loads the chunk's rows,
-- so a chunk is either loaded and recorded or neither. A re-run of the same file (same
-- content, target and mapping: `source`) starts after the rows recorded here: an
-- interrupted import resumes, a finished one loads nothing twice. Counts only: no row
-- of the file (no user id) is kept here.
CREATE TABLE recdb.imports (
    source       text NOT NULL CHECK (source ~ '^[0-9a-f]{64}$'),
    first_row    bigint NOT NULL CHECK (first_row >= 1),
    row_count    integer NOT NULL CHECK (row_count > 0),
    target       text NOT NULL CHECK (target IN ('items', 'events')),
    file_name    text NOT NULL,
    loaded       integer NOT NULL CHECK (loaded BETWEEN 0 AND row_count),
    rejected     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(rejected) = 'object'),
    imported_by  text NOT NULL DEFAULT current_user,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, first_row)
);
COMMENT ON TABLE recdb.imports IS
    'recdb import: one row per loaded chunk of a file (source = sha256 of content, target, mapping)';

-- Imports run as the app role (it writes items and events): it reads the ledger and
-- records chunks, never edits or deletes them; who and when are the server's.
-- A DBA deletes a source's rows to import the same file again.
GRANT SELECT ON recdb.imports TO recdb_app, recdb_readonly;
GRANT INSERT (source, first_row, row_count, target, file_name, loaded, rejected)
    ON recdb.imports TO recdb_app;
