-- recdb 0008: the model's own fold, and a content prior for items nobody has touched.

-- A trained model's fold operator (recdb.sequence.fold): [a, b_0..b_{J-1}, c_0..c_{J-1}].
-- With that model served, rerank() folds a user's unseen events as
-- normalize(a * stored + sum_j (b_j * item_j + c_j * next_j)), j = 0 for the newest;
-- NULL: the mean encoder's algebra. A copy of what the blob holds (the blob,
-- sha256-checked, is the source; recdb.sequence.registry writes both).
ALTER TABLE recdb.models ADD COLUMN fold_weights real[]
    CONSTRAINT models_fold_weights_valid CHECK (
        fold_weights IS NULL
        OR (cardinality(fold_weights) BETWEEN 3 AND 129
            AND cardinality(fold_weights) % 2 = 1
            AND array_position(fold_weights, NULL) IS NULL
            AND 0 <= ALL (fold_weights)
            AND 'Infinity'::real > ALL (fold_weights)));

-- next_j above: per item, the served model's vector for a history of that one item (what
-- the model predicts follows it), written by the worker beside the item vector.
CREATE TABLE recdb.item_next (
    item_id    bigint PRIMARY KEY REFERENCES recdb.items (item_id) ON DELETE CASCADE,
    model_id   bigint NOT NULL REFERENCES recdb.models (model_id) ON DELETE CASCADE,
    embedding  vector(@DIM@) NOT NULL
);
ALTER TABLE recdb.item_next ALTER COLUMN embedding SET STORAGE MAIN;
GRANT SELECT ON recdb.item_next TO recdb_app, recdb_worker, recdb_readonly;
GRANT INSERT, UPDATE, DELETE ON recdb.item_next TO recdb_worker;

-- What rerank() needs to know about the served model, installed by activate_model():
-- its id and its fold operator. Apps read this row, never recdb.models (the blobs).
CREATE TABLE recdb.serving (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    model_id      bigint REFERENCES recdb.models (model_id) ON DELETE SET NULL,
    fold_weights  real[]
);
INSERT INTO recdb.serving (model_id, fold_weights)
SELECT m.model_id, m.fold_weights FROM (SELECT true) t
LEFT JOIN recdb.models m ON m.active;
GRANT SELECT ON recdb.serving TO recdb_app, recdb_worker, recdb_readonly;

-- What an item nobody has interacted with yet is worth before it has popularity of its
-- own: a ridge regression of item_popularity.score on the served item vectors, fitted
-- by the worker's maintenance (recdb.worker.content_prior) in the space of model_id
-- (NULL: text vectors). rerank() adds content_prior_weight x clamp(bias + weights . v,
-- 0, 1) for items without an item_popularity row.
CREATE TABLE recdb.content_prior (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    model_id   bigint REFERENCES recdb.models (model_id) ON DELETE CASCADE,
    weights    vector(@DIM@) NOT NULL,
    bias       double precision NOT NULL CHECK (bias BETWEEN -1e6 AND 1e6),
    ridge      double precision NOT NULL CHECK (ridge > 0),
    items      integer NOT NULL CHECK (items > 0),
    fitted_at  timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON recdb.content_prior TO recdb_app, recdb_worker, recdb_readonly;
GRANT INSERT, UPDATE, DELETE ON recdb.content_prior TO recdb_worker;

ALTER TABLE recdb.settings ADD COLUMN content_prior_weight real NOT NULL DEFAULT 0.5
    CONSTRAINT settings_content_prior_weight_range
    CHECK (content_prior_weight >= 0 AND content_prior_weight <= 100);

-- Exploration: brand-new items (no item_popularity row: nobody interacted with them yet)
-- get a small share of catalogue-mode results, so they are seen and collect the
-- interactions that rank them afterwards. new_items lists them with their content prior
-- (the retrieval source rerank() adds to its pool), rebuilt by the maintenance with the
-- prior; explore_share of k (rounded down) slots go to the best-scored of them.
CREATE TABLE recdb.new_items (
    item_id  bigint PRIMARY KEY REFERENCES recdb.items (item_id) ON DELETE CASCADE,
    prior    real NOT NULL
);
CREATE INDEX new_items_prior ON recdb.new_items (prior DESC, item_id);
GRANT SELECT ON recdb.new_items TO recdb_app, recdb_worker, recdb_readonly;
GRANT INSERT, UPDATE, DELETE ON recdb.new_items TO recdb_worker;

-- explore_after: the first results are never given up to exploration (the first screen
-- stays the best-scored): with k = 20, slots 11-20 may hold the 2 kept new items.
ALTER TABLE recdb.settings
    ADD COLUMN explore_share real NOT NULL DEFAULT 0.1
        CONSTRAINT settings_explore_share_range CHECK (explore_share >= 0 AND explore_share <= 0.5),
    ADD COLUMN explore_after integer NOT NULL DEFAULT 10
        CONSTRAINT settings_explore_after_range CHECK (explore_after BETWEEN 0 AND 10000);
