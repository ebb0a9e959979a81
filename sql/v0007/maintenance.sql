-- recdb 0007: co-visitation maintained from what changed (recdb.sync_covisitation()).
--
-- The state a full rebuild used to throw away is kept, so a run only has to apply the
-- users whose histories changed since the last one:
--   covisit_user_items  each user's co-visitation set: the distinct items of their
--                       covisit_history newest positive events (names the user: erased
--                       by forget_user());
--   covisit_counts      per item, how many users' sets hold it;
--   covisit_pairs       per ordered item pair, how many users' sets hold both (both
--                       directions stored, so each item's pairs are one index range);
--   covisit_state       the knobs the state was built with (a change forces a rebuild).
-- covisit_queue holds the users whose sets may have changed: each batch of vectors the
-- worker writes appends its users (the worker re-encodes exactly the users with new or
-- deleted events); a maintenance step claims rows with SKIP LOCKED and deletes them in
-- its transaction. Append-only: a worker never waits behind a step.

CREATE TABLE recdb.covisit_queue (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL
);

CREATE TABLE recdb.covisit_user_items (
    user_id bigint NOT NULL,
    item_id bigint NOT NULL,
    PRIMARY KEY (user_id, item_id)
);

CREATE TABLE recdb.covisit_counts (
    item_id bigint PRIMARY KEY,
    users   integer NOT NULL CHECK (users >= 0)
);

CREATE TABLE recdb.covisit_pairs (
    item_id  bigint NOT NULL,
    other_id bigint NOT NULL,
    users    integer NOT NULL,
    PRIMARY KEY (item_id, other_id)
);

-- Per item, the best score its list left out: an item in the list that falls below it
-- (or a risen one above the list's lowest) is what makes a list change members.
CREATE TABLE recdb.covisit_runner_up (
    item_id bigint PRIMARY KEY,
    score   double precision NOT NULL
);

CREATE TABLE recdb.covisit_state (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    history   integer NOT NULL,
    neighbors integer NOT NULL,
    built_at  timestamptz NOT NULL
);

-- A list is replaced by its owner (item_id); the primary key leads with the voter.
CREATE INDEX item_neighbors_item ON recdb.item_neighbors (item_id);

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON recdb.covisit_user_items, recdb.covisit_counts,
    recdb.covisit_pairs, recdb.covisit_runner_up, recdb.covisit_state, recdb.covisit_queue
    TO recdb_worker;
