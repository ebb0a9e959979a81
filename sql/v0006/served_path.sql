-- recdb 0006: what the served path reads, made cheap to read.

-- user_vector()'s fold by snapshot visibility: the user's events of transactions at or
-- after a snapshot's xmin are a short range of this index.
-- IF NOT EXISTS: on a large events table, build it beforehand without blocking writers
--   CREATE INDEX CONCURRENTLY events_user_txid ON recdb.events (user_id, txid);
-- and this revision keeps it.
CREATE INDEX IF NOT EXISTS events_user_txid ON recdb.events (user_id, txid);

-- The served vector stays in the row: with two 384-d vectors (embedding and the sequence
-- model's text_embedding) a row passes PostgreSQL's 2 kB TOAST threshold, and EXTERNAL
-- storage moved `embedding` out of line, so every distance rerank() computed paid a TOAST
-- fetch (5x the cost of the distance on ML-100K). MAIN keeps it inline while
-- text_embedding (EXTERNAL, read only by the worker) moves out instead.
ALTER TABLE recdb.items ALTER COLUMN embedding SET STORAGE MAIN;
-- Existing rows keep their out-of-line values until rewritten; a new datum (not the same
-- TOAST pointer) is what moves it. Only the embedding changes: no trigger queues work.
UPDATE recdb.items SET embedding = embedding::real[]::@VEC@.vector
WHERE embedding IS NOT NULL;
