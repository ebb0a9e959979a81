"""What `recdb status` reports: queue depth and age, parked rows, live workers, coverage."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from recdb.db.sqlfiles import query

LIVE_WITHIN_S = 60.0


def collect(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """A JSON-ready snapshot; a database without the recdb schema reports migrated=False."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query("queries/status.sql", "schema_present"))
        row = cur.fetchone()
        assert row is not None
        if not row["migrated"]:
            return {
                "migrated": False,
                "queued_items": 0,
                "queued_users": 0,
                "parked": 0,
                "workers": 0,
                "items_embedded": 0,
                "items_total": 0,
                "users_embedded": 0,
            }
        cur.execute(query("queries/status.sql", "status"))
        out: dict[str, Any] = {"migrated": True, **(cur.fetchone() or {})}
        cur.execute(query("queries/status.sql", "workers"), {"live_within_s": LIVE_WITHIN_S})
        workers = cur.fetchall()
        cur.execute(query("queries/status.sql", "parked"))
        parked = cur.fetchall()
        model = maintenance = None
        if row["has_models"]:
            cur.execute(query("queries/status.sql", "active_model_summary"))
            model = cur.fetchone()
        if row["has_maintenance"]:
            cur.execute(query("queries/status.sql", "maintenance"))
            maintenance = cur.fetchone()
    if model is not None:
        for key in ("created_at", "activated_at"):
            model[key] = model[key].isoformat() if model[key] else None
    for p in parked:
        p["parked_at"] = p["parked_at"].isoformat()
    out["workers"] = len(workers)
    out["worker_details"] = workers
    out["parked_rows"] = parked
    out["active_model"] = model
    out["maintenance"] = maintenance
    elapsed = sum(w["uptime_s"] for w in workers) or 0.0
    out["throughput"] = {
        "items_per_s": round(sum(w["items_encoded"] for w in workers) / elapsed, 2)
        if elapsed
        else 0.0,
        "users_per_s": round(sum(w["users_encoded"] for w in workers) / elapsed, 2)
        if elapsed
        else 0.0,
    }
    return out


def render(s: dict[str, Any]) -> str:
    if not s["migrated"]:
        return "database not migrated: run `recdb db upgrade`"
    age = s.get("oldest_queued_age_s")
    lines = [
        f"items      {s['items_embedded']}/{s['items_total']} embedded, {s['queued_items']} queued",
        f"users      {s['users_embedded']} embedded, {s['queued_users']} queued",
        f"events     {s['events_total']}",
        f"oldest     {'-' if age is None else f'{age:.1f}s'} in queue",
        f"parked     {s['parked']}",
        f"workers    {s['workers']} live"
        f" ({s['throughput']['items_per_s']} items/s, {s['throughput']['users_per_s']} users/s)",
    ]
    m = s.get("active_model")
    if m:
        nd = m.get("valid_ndcg")
        lines.insert(
            3,
            f"model      {m['model_id']} active since {m['activated_at']}: valid ndcg@10 "
            f"{'-' if nd is None else f'{nd:.4f}'}, {m['epochs']} epochs, trained through "
            f"event {m['trained_through']} ({m['models_stored']} stored)",
        )
    else:
        lines.insert(3, "model      none active: text vectors served (recdb train)")
    mt = s.get("maintenance")
    if mt:
        jobs = mt.get("jobs") or {}
        done = ", ".join(
            f"{job} {j['finished_at'][:19]} ({j['seconds']}s)" for job, j in sorted(jobs.items())
        )
        lines.append(f"maintained {done or 'never'}")
        if mt.get("last_erasure_at"):
            state = "applied" if mt["erasures_applied"] else "pending the next maintenance run"
            lines.append(f"erasure    last {mt['last_erasure_at']:%Y-%m-%d %H:%M:%S}: {state}")
    for w in s["worker_details"]:
        served = "" if w.get("model_id") is None else f", model {w['model_id']}"
        lines.append(
            f"  - {w['worker_id']} on {w['device']} ({w['user_encoder']}{served}): "
            f"{w['items_encoded']} items, {w['users_encoded']} users, {w['errors']} errors, "
            f"heartbeat {w['heartbeat_age_s']:.1f}s ago"
        )
    for p in s["parked_rows"]:
        lines.append(
            f"  parked {p['kind']} {p['id']} after {p['attempts']} tries: {p['last_error']}"
        )
    return "\n".join(lines)
