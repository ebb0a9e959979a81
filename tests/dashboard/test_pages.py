"""Every dashboard page in a real headless Chromium against `recdb serve` on the
MovieLens-100K database: what a person sees, in the order rerank() gives it."""

from __future__ import annotations

import json
import re

import pytest

from tests.dashboard.conftest import HOSTILE, HOSTILE_ITEM, PARKED_ITEM
from tests.dashboard.pages import item_ids, sql, table
from tests.support import REPO_ROOT

ESCAPED = "&lt;script&gt;"


def test_status_page_shows_queues_workers_parked_rows_model_and_maintenance(
    dashboard, browser, ml_url
):
    sql(ml_url, "UPDATE recdb.workers SET heartbeat_at = now() RETURNING 1")  # live again
    sql(ml_url, "INSERT INTO recdb.covisit_queue (user_id) VALUES (7), (8), (7) RETURNING 1")
    try:
        dom = browser.dom(dashboard.base + "/")
    finally:
        sql(ml_url, "DELETE FROM recdb.covisit_queue RETURNING 1")
    assert "<h1>Status</h1>" in dom
    (items_queued, users_queued), = sql(
        ml_url,
        "SELECT (SELECT count(*) FROM recdb.item_queue WHERE parked_at IS NULL),"
        " (SELECT count(DISTINCT user_id) FROM recdb.user_queue WHERE parked_at IS NULL)",
    )  # fmt: skip
    queues = table(dom, "queues")
    for queue, n in (("items", items_queued), ("users", users_queued)):
        row = re.search(rf'data-queue="{queue}".*?</tr>', queues, re.S)
        assert row and f'class="num depth">{n:,}<' in row.group(0)
    assert items_queued == 1681 and users_queued == 943  # ML-100K, one film parked
    workers = table(dom, "workers")
    assert "test-worker-1" in workers and "<td>2</td>" in workers  # the model it serves
    parked = table(dom, "parked")
    assert f">{PARKED_ITEM}</a>" in parked and ESCAPED in parked  # its error, as text
    maintenance = table(dom, "maintenance")
    assert "<td>popularity</td>" in maintenance
    assert "active model: <a" in dom and "Model <a" in dom
    assert 'id="covisitation-backlog">2<' in dom  # users 7 and 8, each once
    assert "Read-only as <b>recdb_readonly</b> in read-only transactions" in dom
    assert HOSTILE not in dom


@pytest.mark.parametrize("user, k", [(1, 20), (405, 7)])
def test_user_page_shows_rerank_top_k_in_its_order(dashboard, browser, ml_url, user, k):
    dom = browser.dom(f"{dashboard.base}/users/{user}?k={k}")
    assert f"<h1>User {user}</h1>" in dom
    direct = sql(
        ml_url,
        "SELECT item_id, reason, because_item_id, fresh_events FROM rerank(%s, k => %s)",
        (user, k),
    )
    assert item_ids(dom, "topk") == [r[0] for r in direct]
    assert len(direct) == k
    topk = table(dom, "topk")
    first_row = topk.split("data-item-id=")[1]
    assert direct[0][1] in first_row and f'href="/items/{direct[0][2]}"' in first_row
    assert f"fresh_events = <b>{direct[0][3]}</b>" in dom
    # the newest events, newest first, bounded
    newest = [r[0] for r in sql(
        ml_url,
        "SELECT event_id FROM recdb.events WHERE user_id = %s ORDER BY event_id DESC LIMIT 50",
        (user,),
    )]  # fmt: skip
    shown = [int(x) for x in re.findall(r'<tr><td class="num">(\d+)</td>', table(dom, "events"))]
    assert shown == newest and len(shown) == 50


def test_item_page_shows_the_item_and_similar_items_in_order(dashboard, browser, ml_url):
    dom = browser.dom(dashboard.base + "/items/50")
    ((title, body, attrs),) = sql(
        ml_url, "SELECT title, body, attrs FROM recdb.items WHERE item_id = 50"
    )
    assert f"<h1>Item 50: {title}</h1>" in dom
    assert all(g in table_or_pre(dom, "attrs") for g in attrs["genres"])
    assert f'<pre id="body">{body}</pre>' in dom
    direct = [r[0] for r in sql(ml_url, "SELECT item_id FROM similar_items(50, 10)")]
    assert item_ids(dom, "similar") == direct and len(direct) == 10


def table_or_pre(dom: str, element_id: str) -> str:
    m = re.search(rf'<pre id="{element_id}">(.*?)</pre>', dom, re.S)
    assert m, f"no #{element_id}"
    return m.group(1)


def test_html_in_the_data_is_shown_as_text(dashboard, browser):
    dom = browser.dom(f"{dashboard.base}/items/{HOSTILE_ITEM}")
    assert "<h1>Item 1681: " + ESCAPED in dom
    assert "<script>" not in dom and "onerror=alert" not in dom.replace("onerror=alert(1)&gt;", "")


def test_models_page_lists_the_registry_with_the_active_model(dashboard, browser):
    dom = browser.dom(dashboard.base + "/models")
    models = table(dom, "models")
    assert re.findall(r'data-model-id="(\d+)"', models) == ["2", "1"]  # newest first
    assert 'data-model-id="2" class="active"' in models and "0.1000" in models
    assert "activate_model" in dom  # says where activation lives; offers none


def test_results_page_shows_eval_and_bench_results_and_the_plot(dashboard, browser, result_files):
    dom = browser.dom(dashboard.base + "/results")
    evaluated = table(dom, "eval")
    assert "sequence" in evaluated and "0.0963" in evaluated and "0.1137" in evaluated
    assert 'id="eval-plot" src="/results/eval.png"' in dom
    bench = table(dom, "bench")
    served = json.loads((REPO_ROOT / "docs" / "bench.json").read_text())["sizes"]["100000"]
    assert "<td>100000</td>" in bench and f"{served['rerank_p50_ms']:.3f}" in bench
    assert "recall_at_20 @100k" in table(dom, "targets")
    png = dashboard.get("/results/eval.png")
    assert png.status_code == 200 and png.content == result_files[1].read_bytes()


@pytest.mark.parametrize(
    "path, status, says",
    [
        ("/users/999999", 404, "user 999999 is unknown"),
        ("/items/999999", 404, "item 999999 is unknown"),
        ("/users/abc", 400, "is not a user id"),
        ("/users/99999999999999999999", 400, "ids are 64-bit integers"),
        ("/users/1?k=0", 400, "k must be an integer from 1 to 100"),
        ("/users/1?k=101", 400, "k must be an integer from 1 to 100"),
        ("/no/such/page", 404, "no page at /no/such/page"),
        ("/users?id=12x", 400, "is not a user id"),
    ],
)
def test_bad_and_unknown_ids_get_a_page_that_says_why(dashboard, path, status, says):
    res = dashboard.get(path)
    assert res.status_code == status
    assert res.headers["content-type"].startswith("text/html")
    assert says in res.text.replace("&#39;", "'") and "Traceback" not in res.text


def test_the_lookup_forms_lead_to_the_pages(dashboard):
    res = dashboard.get("/users?id=42")
    assert res.status_code == 303 and res.headers["location"] == "/users/42"
    res = dashboard.get("/items?id=%2050%20")
    assert res.status_code == 303 and res.headers["location"] == "/items/50"


@pytest.mark.parametrize(
    "path",
    [
        "/users/1;DROP TABLE recdb.items;--",
        "/users/1%3BDROP%20TABLE%20recdb.events",
        "/users/<script>alert(1)</script>",
        "/items/<script>alert(1)</script>",
        "/users/1?k=<script>alert(1)</script>",
        "/users?id=<script>alert(1)</script>",
        "/<script>alert(1)</script>",
    ],
)
def test_hostile_urls_are_refused_and_shown_as_text(dashboard, browser, ml_url, path):
    res = dashboard.get(path)
    assert res.status_code in (400, 404) and "<script>alert" not in res.text
    dom = browser.dom(dashboard.base + path)
    assert "<script>alert" not in dom
    assert "is not a" in dom or "k must be" in dom or "no page at" in dom
    if "script" in path:
        assert ESCAPED in dom  # the input is echoed, as text
    assert sql(ml_url, "SELECT (SELECT count(*) FROM recdb.items), (SELECT count(*) FROM"
               " recdb.events)") == [(1682, 100000)]  # fmt: skip


def test_screenshot_is_a_real_rendering(dashboard, browser, tmp_path):
    import matplotlib.image

    png = browser.screenshot(dashboard.base + "/users/1", tmp_path / "user1.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 900)
    pixels = matplotlib.image.imread(png)[..., :3]
    colours = {tuple(p) for p in pixels[::20, ::20].reshape(-1, 3).round(2)}
    assert len(colours) > 20  # text, table lines, the header bar: not a blank page
    assert pixels[10, 10].tolist() != pixels[450, 640].tolist()  # header vs body


def test_only_loopback_host_names_are_served_and_pages_forbid_scripts(dashboard):
    # a DNS-rebinding page would send its own host name
    assert dashboard.get("/", headers={"host": "attacker.example"}).status_code == 400
    res = dashboard.get("/", headers={"host": "localhost"})
    assert res.status_code == 200
    assert "default-src 'none'" in res.headers["content-security-policy"]
    assert res.headers["cache-control"] == "no-store"
    assert "<script" not in res.text  # no JavaScript at all


def test_serve_binds_loopback_port_8700_by_default(monkeypatch):
    from recdb.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.access_log) == ("127.0.0.1", 8700, False)
    monkeypatch.setenv("RECDB_EVAL_JSON", "eval.json")  # what `recdb eval --json` reads too
    assert build_parser().parse_args(["serve"]).eval_json == "eval.json"
