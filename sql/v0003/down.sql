-- recdb 0003 downgrade: back to text vectors in items.embedding, no registry.
-- Items embedded by a model get their text vector back, so rerank() keeps working.
UPDATE recdb.items SET embedding = text_embedding, encoder = NULL
WHERE text_embedding IS NOT NULL AND embedding IS DISTINCT FROM text_embedding;
-- Users encoded by a model live in its space: the worker rebuilds them from text vectors.
INSERT INTO recdb.user_queue (user_id)
SELECT user_id FROM recdb.users WHERE encoder LIKE 'sequence:%' ORDER BY user_id;
DROP FUNCTION recdb.activate_model(bigint);
ALTER TABLE recdb.workers DROP COLUMN model_id;
DROP TABLE recdb.models;
ALTER TABLE recdb.items DROP COLUMN text_key;
ALTER TABLE recdb.items DROP COLUMN text_embedding;
