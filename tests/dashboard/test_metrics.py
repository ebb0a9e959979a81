"""`recdb serve`'s /metrics: the database gauges, as Prometheus parses them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.dashboard.pages import sql


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(name, sorted labels): value} of an exposition, parsed by prometheus_client."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_serve_metrics_are_the_database_gauges(dashboard, ml_url):
    sql(ml_url, "UPDATE recdb.workers SET heartbeat_at = now() RETURNING 1")
    res = dashboard.get("/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    m = samples(res.text)
    (items, users, item_age), = sql(
        ml_url,
        "SELECT (SELECT count(*) FROM recdb.item_queue WHERE parked_at IS NULL),"
        " (SELECT count(DISTINCT user_id) FROM recdb.user_queue WHERE parked_at IS NULL),"
        " extract(epoch FROM now() - (SELECT min(enqueued_at) FROM recdb.item_queue))::float8",
    )  # fmt: skip
    assert m[("recdb_database_up", ())] == 1
    assert m[("recdb_queue_depth", (("queue", "items"),))] == items == 1681
    assert m[("recdb_queue_depth", (("queue", "users"),))] == users == 943
    assert 0 < m[("recdb_queue_oldest_age_seconds", (("queue", "items"),))] <= item_age
    assert m[("recdb_parked_rows", (("queue", "items"),))] == 1
    assert m[("recdb_parked_rows", (("queue", "users"),))] == 0
    assert m[("recdb_active_model_id", ())] == 2
    assert m[("recdb_workers_live", ())] == 1
    assert m[("recdb_maintenance_last_duration_seconds", (("job", "popularity"),))] > 0
    assert ("recdb_maintenance_last_finished_timestamp_seconds", (("job", "popularity"),)) in m
    assert ("process_resident_memory_bytes", ()) in m
    # the worker's own counters are the worker's: serve does not pretend to have them
    assert not any(name.startswith("recdb_users_encoded") for name, _ in m)


def test_the_co_visitation_backlog_is_a_gauge(dashboard, ml_url):
    """Re-encoded users whose co-visitation step is pending (recdb.covisit_queue, read as
    recdb_readonly by `recdb serve`): the maintenance yields to waiting users, so under a
    sustained load the neighbour lists trail them, and this says by how many."""
    assert samples(dashboard.get("/metrics").text)[("recdb_covisitation_backlog", ())] == 0
    sql(ml_url, "INSERT INTO recdb.covisit_queue (user_id) VALUES (1), (2), (1) RETURNING 1")
    try:
        m = samples(dashboard.get("/metrics").text)
        assert m[("recdb_database_up", ())] == 1
        assert m[("recdb_covisitation_backlog", ())] == 2  # users, each once
    finally:
        sql(ml_url, "DELETE FROM recdb.covisit_queue RETURNING 1")
