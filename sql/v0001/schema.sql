-- recdb 0001: core schema. Loaded by migrations/versions/0001_core.py.
-- @DIM@ is replaced by the embedding dimension chosen at this first migration.

-- Remember whether pgvector was already there, so the downgrade drops it only if we added it.
SELECT set_config('recdb.created_vector',
                  (NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector'))::text, true);
CREATE EXTENSION IF NOT EXISTS vector;
DO $$ BEGIN
    IF current_setting('recdb.created_vector', true) = 'true' THEN
        COMMENT ON EXTENSION vector IS 'created by recdb';
    END IF;
END $$;
CREATE SCHEMA recdb;
COMMENT ON SCHEMA recdb IS 'recdb: items, events, embeddings and the ranking functions';

-- Kinds of user events and how much each one says about interest.
-- weight < 0 pushes the user vector away (dislike). half_life NULL = no decay.
-- Valued kinds (rate) map value v to weight * (v - value_center) / value_scale
-- and must lie within [min_value, max_value].
CREATE TABLE recdb.event_kinds (
    kind            text PRIMARY KEY CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    weight          real NOT NULL,
    half_life       interval,
    counts_as_seen  boolean NOT NULL DEFAULT true,
    min_value       real,
    max_value       real,
    value_center    real,
    value_scale     real CHECK (value_scale IS NULL OR value_scale > 0),
    CHECK ((value_center IS NULL) = (value_scale IS NULL)),
    CHECK (min_value IS NULL OR max_value IS NULL OR min_value <= max_value)
);

INSERT INTO recdb.event_kinds
    (kind, weight, half_life, counts_as_seen, min_value, max_value, value_center, value_scale)
VALUES
    ('view',     0.5, '14 days',  true,  NULL, NULL, NULL, NULL),
    ('click',    1.0, '30 days',  true,  NULL, NULL, NULL, NULL),
    ('cart',     2.0, '30 days',  false, NULL, NULL, NULL, NULL),
    ('purchase', 3.0, '180 days', true,  NULL, NULL, NULL, NULL),
    ('like',     2.0, '180 days', true,  NULL, NULL, NULL, NULL),
    ('rate',     1.0, '180 days', true,  1,    5,    2,    3),
    ('dislike', -2.0, '180 days', true,  NULL, NULL, NULL, NULL),
    ('skip',    -0.3, '14 days',  true,  NULL, NULL, NULL, NULL);

-- Ranking knobs, one row. Changed with plain UPDATE; read by rerank() on every call.
CREATE TABLE recdb.settings (
    id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
    popularity_weight     real NOT NULL DEFAULT 0.05,
    popularity_half_life  interval NOT NULL DEFAULT '30 days',
    freshness_weight      real NOT NULL DEFAULT 0.0,
    freshness_half_life   interval NOT NULL DEFAULT '30 days',
    diversity_penalty     real NOT NULL DEFAULT 0.02 CHECK (diversity_penalty >= 0),
    candidate_factor      integer NOT NULL DEFAULT 3 CHECK (candidate_factor BETWEEN 1 AND 50),
    ef_search             integer NOT NULL DEFAULT 200 CHECK (ef_search BETWEEN 10 AND 1000),
    max_fold_events       integer NOT NULL DEFAULT 200 CHECK (max_fold_events BETWEEN 0 AND 10000),
    explain_history       integer NOT NULL DEFAULT 20 CHECK (explain_history BETWEEN 0 AND 1000),
    -- Collaborative signal: items co-consumed with the user's recent items
    -- (recdb.item_neighbors, refreshed by the worker) add covisit_weight x their share.
    covisit_weight        real NOT NULL DEFAULT 2.0 CHECK (covisit_weight >= 0),
    covisit_neighbors     integer NOT NULL DEFAULT 10 CHECK (covisit_neighbors BETWEEN 1 AND 1000),
    covisit_history       integer NOT NULL DEFAULT 200 CHECK (covisit_history BETWEEN 1 AND 10000)
);
INSERT INTO recdb.settings DEFAULT VALUES;

CREATE TABLE recdb.items (
    item_id      bigint PRIMARY KEY,
    title        text NOT NULL,
    body         text,
    attrs        jsonb NOT NULL DEFAULT '{}'::jsonb
                 CONSTRAINT items_attrs_is_object CHECK (jsonb_typeof(attrs) = 'object'),
    available    boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    embedding    vector(@DIM@),
    embedded_at  timestamptz,
    encoder      text
);
CREATE INDEX items_embedding_hnsw ON recdb.items
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);
CREATE INDEX items_created_at ON recdb.items (created_at DESC, item_id);
CREATE INDEX items_attrs ON recdb.items USING gin (attrs jsonb_path_ops);

CREATE TABLE recdb.events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY,
    user_id      bigint NOT NULL,
    item_id      bigint NOT NULL REFERENCES recdb.items (item_id),
    kind         text NOT NULL REFERENCES recdb.event_kinds (kind),
    value        real CONSTRAINT events_value_finite CHECK (value IS NULL OR value::float8 <> 'NaN'::float8 AND abs(value) <> 'Infinity'::real),
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, event_id)
);
CREATE INDEX events_item_id ON recdb.events (item_id);
CREATE INDEX events_occurred_at ON recdb.events (occurred_at);

-- One row per user the worker has encoded. norm is the length of the weighted
-- sum before normalising, so rerank() can fold newer events into the vector.
-- encoded_through is the highest event_id folded in (the watermark).
CREATE TABLE recdb.users (
    user_id          bigint PRIMARY KEY,
    embedding        vector(@DIM@),
    norm             real NOT NULL DEFAULT 0,
    encoded_through  bigint NOT NULL DEFAULT 0,
    last_event_at    timestamptz,
    event_count      integer NOT NULL DEFAULT 0,
    encoder          text,
    encoded_at       timestamptz NOT NULL DEFAULT now()
);

-- Popularity with recency decay, refreshed by recdb.refresh_popularity() (the worker
-- calls it periodically). score is normalised to [0, 1] for use as a ranking prior.
CREATE TABLE recdb.item_popularity (
    item_id    bigint PRIMARY KEY REFERENCES recdb.items (item_id) ON DELETE CASCADE,
    raw        double precision NOT NULL,
    score      double precision NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX item_popularity_score ON recdb.item_popularity (score DESC, item_id);

-- Item-item co-visitation: for each item, its covisit_neighbors most similar items by
-- the cosine of their user sets (users' covisit_history newest positive events).
-- Keyed by the voting item so rerank() reads only the rows of the user's history.
CREATE TABLE recdb.item_neighbors (
    neighbor_id  bigint NOT NULL,
    item_id      bigint NOT NULL,
    score        real NOT NULL,
    PRIMARY KEY (neighbor_id, item_id)
);

-- Durable work queues, written by triggers in the writer's own transaction.
--
-- item_queue: one row per changed item. Writers upsert: when a worker holds the row,
-- the upsert waits for that batch and re-queues the item after the worker's delete, so
-- a change racing a batch is never lost.
--
-- user_queue: append-only, one row per (statement, user). Event writers only INSERT, so
-- they never wait on a worker or on each other (a keyed upsert here would let two
-- transactions that touch the same users in different orders deadlock). Workers claim
-- rows with FOR UPDATE SKIP LOCKED plus a per-user advisory lock, and delete exactly the
-- rows they locked, so a row committed after their snapshot stays for the next batch.
--
-- attempts/not_before/last_error drive retry with backoff; parked_at takes a poison row
-- out of the way until a new change (or an UPDATE setting parked_at = NULL) revives it.
CREATE TABLE recdb.item_queue (
    item_id      bigint PRIMARY KEY,
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    changes      integer NOT NULL DEFAULT 1,
    attempts     integer NOT NULL DEFAULT 0,
    not_before   timestamptz NOT NULL DEFAULT '-infinity',
    last_error   text,
    parked_at    timestamptz
);
CREATE INDEX item_queue_ready ON recdb.item_queue (not_before, enqueued_at) WHERE parked_at IS NULL;

CREATE TABLE recdb.user_queue (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL,
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    not_before   timestamptz NOT NULL DEFAULT '-infinity',
    last_error   text,
    parked_at    timestamptz
);
CREATE INDEX user_queue_user ON recdb.user_queue (user_id);
CREATE INDEX user_queue_ready ON recdb.user_queue (id) WHERE parked_at IS NULL;

-- Liveness and throughput of each worker process (recdb status reads it).
CREATE TABLE recdb.workers (
    worker_id      text PRIMARY KEY,
    hostname       text NOT NULL,
    pid            integer NOT NULL,
    device         text NOT NULL,
    user_encoder   text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    heartbeat_at   timestamptz NOT NULL DEFAULT now(),
    items_encoded  bigint NOT NULL DEFAULT 0,
    users_encoded  bigint NOT NULL DEFAULT 0,
    batches        bigint NOT NULL DEFAULT 0,
    errors         bigint NOT NULL DEFAULT 0,
    stopped_at     timestamptz
);
