-- Named queries for `recdb status`.

-- name: status
SELECT
    (SELECT count(*) FROM recdb.item_queue WHERE parked_at IS NULL)                 AS queued_items,
    (SELECT count(DISTINCT user_id) FROM recdb.user_queue WHERE parked_at IS NULL)  AS queued_users,
    (SELECT count(*) FROM recdb.item_queue WHERE parked_at IS NOT NULL)
      + (SELECT count(DISTINCT user_id) FROM recdb.user_queue
         WHERE parked_at IS NOT NULL)                                               AS parked,
    extract(epoch FROM now() - least(
        (SELECT min(enqueued_at) FROM recdb.item_queue WHERE parked_at IS NULL),
        (SELECT min(enqueued_at) FROM recdb.user_queue WHERE parked_at IS NULL)))::float8
                                                                                     AS oldest_queued_age_s,
    (SELECT count(*) FROM recdb.items WHERE embedding IS NOT NULL)                  AS items_embedded,
    (SELECT count(*) FROM recdb.items)                                              AS items_total,
    (SELECT count(*) FROM recdb.users WHERE embedding IS NOT NULL)                  AS users_embedded,
    (SELECT count(*) FROM recdb.events)                                             AS events_total

-- name: workers
SELECT worker_id, hostname, pid, device, user_encoder,
       extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_s,
       extract(epoch FROM heartbeat_at - started_at)::float8 AS uptime_s,
       items_encoded, users_encoded, batches, errors,
       (to_jsonb(w) ->> 'model_id')::bigint AS model_id  -- absent before migration 0003
FROM recdb.workers w
WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => %(live_within_s)s)
ORDER BY started_at

-- name: parked
SELECT 'item' AS kind, item_id AS id, attempts, last_error, parked_at FROM recdb.item_queue
WHERE parked_at IS NOT NULL
UNION ALL
(SELECT DISTINCT ON (user_id) 'user', user_id, attempts, last_error, parked_at
 FROM recdb.user_queue WHERE parked_at IS NOT NULL ORDER BY user_id, parked_at DESC)
ORDER BY parked_at
LIMIT 20

-- name: active_model_summary
-- The served model and its training metrics (no row: text vectors are served).
SELECT model_id, created_at, activated_at, trained_through, dim,
       metrics -> 'valid_ndcg@10' AS valid_ndcg,
       metrics -> 'valid_hr@10' AS valid_hr,
       metrics -> 'epochs' AS epochs,
       metrics -> 'seconds_per_epoch' AS seconds_per_epoch,
       (SELECT count(*) FROM recdb.models) AS models_stored
FROM recdb.models WHERE active

-- name: schema_present
SELECT to_regclass('recdb.items') IS NOT NULL AS migrated,
       to_regclass('recdb.models') IS NOT NULL AS has_models,
       to_regclass('recdb.maintenance') IS NOT NULL AS has_maintenance

-- name: maintenance
-- When each maintenance job last finished, and the last erasure (forget_user): popularity
-- and co-visitation count an erased user's events until a run after the erasure.
SELECT (SELECT jsonb_object_agg(job, jsonb_build_object(
            'finished_at', finished_at, 'seconds', round(seconds::numeric, 3), 'rows', rows))
        FROM recdb.maintenance) AS jobs,
       last_erasure_at, maintained_at,
       last_erasure_at IS NULL OR (both_jobs_ran AND maintained_at >= last_erasure_at)
           AS erasures_applied
FROM recdb.maintenance_status
