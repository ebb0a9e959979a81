-- Named queries of the Prometheus metrics (recdb/metrics.py): the database gauges that
-- `recdb worker --metrics-port` and `recdb serve` expose at /metrics, and that the
-- dashboard's status page shows. Read by the worker role and by recdb_readonly.

-- name: metrics_session
-- The worker's scrape connection: a scrape never outlasts Prometheus' timeout.
SELECT set_config('statement_timeout', %(timeout_ms)s, false)

-- name: metrics_gauges
-- One row per scrape. Each queue count reads at most %(cap)s rows, so a scrape stays
-- cheap even after an activation re-queued a 10^6-item catalogue (a value at the cap
-- means "at least"; the oldest age is then the oldest of the rows read). Users are
-- counted once however many rows they have queued, as `recdb status` counts them.
WITH items AS (
    SELECT count(*) AS depth, min(q.enqueued_at) AS oldest
    FROM (SELECT enqueued_at FROM recdb.item_queue WHERE parked_at IS NULL
          LIMIT %(cap)s) q
), users AS (
    SELECT count(DISTINCT q.user_id) AS depth, min(q.enqueued_at) AS oldest
    FROM (SELECT user_id, enqueued_at FROM recdb.user_queue WHERE parked_at IS NULL
          ORDER BY id LIMIT %(cap)s) q
)
SELECT items.depth AS items_depth,
       users.depth AS users_depth,
       coalesce(extract(epoch FROM now() - items.oldest), 0)::float8 AS items_oldest_age_s,
       coalesce(extract(epoch FROM now() - users.oldest), 0)::float8 AS users_oldest_age_s,
       (SELECT count(*) FROM (SELECT 1 FROM recdb.item_queue WHERE parked_at IS NOT NULL
                              LIMIT %(cap)s) p) AS items_parked,
       (SELECT count(DISTINCT p.user_id)
        FROM (SELECT user_id FROM recdb.user_queue WHERE parked_at IS NOT NULL
              LIMIT %(cap)s) p) AS users_parked,
       (SELECT count(*) FROM recdb.workers
        WHERE stopped_at IS NULL
          AND heartbeat_at > now() - make_interval(secs => %(live_within_s)s)) AS workers_live,
       coalesce((SELECT model_id FROM recdb.models WHERE active), 0) AS active_model_id,
       (SELECT count(DISTINCT c.user_id)
        FROM (SELECT user_id FROM recdb.covisit_queue LIMIT %(cap)s) c) AS covisitation_backlog,
       (SELECT coalesce(jsonb_object_agg(job, jsonb_build_object(
                    'seconds', seconds,
                    'finished_at', extract(epoch FROM finished_at)::float8)), '{}')
        FROM recdb.maintenance) AS maintenance
FROM items, users
