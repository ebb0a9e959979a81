"""One database with the MovieLens-100K demo data for the dashboard's tests, and one
`recdb serve` on it for the module.

The 1,682 films and 100,000 ratings load in ~2 s; instead of running the text model,
every film gets a seeded random unit vector, which is all rerank() and similar_items()
need. A few rows make every panel show something: a live worker serving an active model
(a registry row with placeholder weights), a parked item whose error text and a film
whose title hold HTML that must come out as text.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recdb.datasets.loader import load_movielens
from recdb.db import connect, scratch
from tests.dashboard.browser import Browser, find_chromium
from tests.dashboard.server import Served, start_serve
from tests.support import REPO_ROOT
from tests.support.database import TEMPLATE, TEST_DIM

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
HOSTILE_ITEM = 1681  # its title is HOSTILE
PARKED_ITEM = 1682  # parked, its last error is HOSTILE
UNKNOWN_USER = 999_999
BENCH_JSON = REPO_ROOT / "docs" / "bench.json"

SETUP = f"""
SELECT setseed(0.42);
UPDATE recdb.items SET embedding = (
    SELECT l2_normalize(array_agg(random() - 0.5)::real[]::vector)
    FROM generate_series(1, {TEST_DIM}) WHERE item_id IS NOT NULL),
    embedded_at = now(), encoder = 'random (test)';
UPDATE recdb.items SET title = %(hostile)s WHERE item_id = {HOSTILE_ITEM};
SELECT recdb.refresh_popularity();
INSERT INTO recdb.models (config, metrics, text_dim, dim, trained_through, blob, sha256)
SELECT '{{"epochs": 3}}', jsonb_build_object('valid_ndcg@10', 0.05 * n, 'epochs', n),
       {TEST_DIM}, {TEST_DIM}, 1000 * n, '\\x00'::bytea, sha256('\\x00'::bytea)
FROM generate_series(1, 2) n;
SELECT recdb.stage_stored_vectors(2, false);  -- model 2 "projects" to the same vectors
SELECT recdb.build_vector_space(2);
SELECT recdb.activate_model(2);
INSERT INTO recdb.workers (worker_id, hostname, pid, device, user_encoder, model_id)
VALUES ('test-worker-1', 'testhost', 4242, 'cpu', 'auto', 2);
UPDATE recdb.item_queue SET parked_at = now(), attempts = 5, last_error = %(hostile)s
WHERE item_id = {PARKED_ITEM};
ANALYZE recdb.items, recdb.events, recdb.users;
"""


@pytest.fixture(scope="module")
def ml_url(server_url: str, template_url: str) -> Iterator[str]:
    """A database of the module's own with ML-100K loaded (see the module docstring)."""
    name = f"recdb_dash_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = scratch.recreate(server_url, name, template=TEMPLATE)
    try:
        with connect(url, autocommit=True) as conn:
            load_movielens(conn, progress=False)
            for statement in SETUP.split(";\n"):
                if statement.strip():
                    conn.execute(statement, {"hostile": HOSTILE} if "%(" in statement else None)
        yield url
    finally:
        scratch.drop(server_url, name)


@pytest.fixture(scope="module")
def result_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An eval result in `recdb eval --json` form and a PNG plot of it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = tmp_path_factory.mktemp("results")
    result = {
        "protocol": {"dataset": "ml-100k", "users": 943, "items": 1682, "k": 10,
                     "split": "chronological leave-one-out"},
        "methods": {
            "popularity": {"hr@10": 0.0859, "ndcg@10": 0.0449, "mrr@10": 0.0326,
                           "coverage@10": 0.054, "seconds": 1.0},
            "sequence": {"hr@10": 0.1866, "ndcg@10": 0.0963, "mrr@10": 0.0687,
                         "coverage@10": 0.394, "seconds": 150.0,
                         "valid": {"ndcg@10": 0.1137}},
        },
    }  # fmt: skip
    (d / "eval.json").write_text(json.dumps(result))
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(["popularity", "sequence"], [0.0449, 0.0963])
    fig.savefig(d / "eval.png", dpi=80)
    plt.close(fig)
    return d / "eval.json", d / "eval.png"


@pytest.fixture(scope="module")
def dashboard(
    ml_url: str, result_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`recdb serve --eval-json ... --eval-plot ... --bench-json docs/bench.json` on the
    ML-100K database. When the module is done it must stop cleanly on SIGTERM, having
    logged no traceback (whatever the tests sent it) and no access log line."""
    eval_json, eval_png = result_files
    served = start_serve(
        ml_url,
        tmp_path_factory.mktemp("serve"),
        "--eval-json", str(eval_json), "--eval-plot", str(eval_png),
        "--bench-json", str(BENCH_JSON),
    )  # fmt: skip
    yield served
    code = served.stop()
    output = served.output()
    assert code in (0, -signal.SIGTERM), output  # uvicorn re-raises the signal once stopped
    assert "Traceback" not in output, output
    assert '"GET /' not in output, output  # no access log unless asked for


@pytest.fixture(scope="session")
def browser() -> Browser:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (apt-get install chromium): browser tests skipped")
    return Browser(binary)
