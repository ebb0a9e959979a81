"""`recdb demo`: MovieLens-100K end to end on the embedded default (or RECDB_DATABASE_URL).

migrate -> load (a no-op when already loaded) -> encode everything queued (progress
shown) -> a user's top 10 with explanations -> three clicks on films of a genre the user
rarely watches -> the new top 10 read at once, with no worker in between (rerank() folds
events newer than the stored user vector) -> a background worker folds the clicks into the
stored vector, is stopped cleanly, and the timings are printed.

Rerunnable: the clicks of the previous run (event ids remembered in RECDB_HOME) are
deleted first, so every run starts from the same history.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from recdb.datasets.movielens import MovieLensNotFound
from recdb.db.sqlfiles import query

_Q = "queries/demo.sql"
TOP = 10
CLICKS = 3
# Genres distinctive enough that three clicks visibly pull the ranking their way.
DEMO_GENRES = (
    "Horror", "Sci-Fi", "Western", "Film-Noir", "Documentary", "Musical", "Animation",
    "War", "Mystery", "Fantasy", "Children's", "Crime",
)  # fmt: skip


@dataclass
class Row:
    rank: int
    item_id: int
    score: float
    reason: str
    title: str
    genres: list[str]
    fresh_events: int


@dataclass
class DemoResult:
    user_id: int
    genre: str
    clicked: list[int]
    before: list[Row]
    after: list[Row]
    caught_up: list[Row]
    fresh_after: int
    timings: dict[str, float] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)


# --- state: which events the previous run added ------------------------------------------------


def _state_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _read_state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def forget_previous_clicks(conn: psycopg.Connection[Any], url: str, state_path: Path) -> int:
    """Delete the clicks a previous demo run recorded in this database; returns how many."""
    prev = _read_state(state_path).get(_state_key(url))
    if not prev:
        return 0
    cur = conn.execute(
        query(_Q, "delete_clicks"), {"user_id": prev["user_id"], "event_ids": prev["event_ids"]}
    )
    return cur.rowcount


def _remember_clicks(url: str, state_path: Path, user_id: int, event_ids: list[int]) -> None:
    state = _read_state(state_path)
    state[_state_key(url)] = {"user_id": user_id, "event_ids": event_ids}
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state, indent=2) + "\n")


# --- steps -------------------------------------------------------------------------------------


def top(
    conn: psycopg.Connection[Any], user_id: int, k: int = TOP, filter: dict | None = None
) -> tuple[list[Row], float]:
    """The user's top k from rerank(), with titles; and how long the call took (ms)."""
    t0 = time.perf_counter()
    params = {"user_id": user_id, "k": k, "filter": None if filter is None else Jsonb(filter)}
    rows = conn.execute(query(_Q, "top"), params).fetchall()
    ms = 1000 * (time.perf_counter() - t0)
    return [Row(*r) for r in rows], ms


def pick_genre(conn: psycopg.Connection[Any], user_id: int, genre: str | None = None) -> str:
    """The demo genre (given, or the one this user watches least relative to the catalogue)."""
    shares = conn.execute(query(_Q, "genre_shares"), {"user_id": user_id}).fetchall()
    known = {g: (share, unseen) for g, share, unseen in shares}
    if genre is not None:
        if genre not in known:
            raise ValueError(f"--genre {genre!r}: no such genre; known: {', '.join(sorted(known))}")
        return genre
    candidates = [(known[g][0], g) for g in DEMO_GENRES if g in known and known[g][1] >= CLICKS]
    if not candidates:
        candidates = [(s, g) for g, (s, unseen) in known.items() if unseen >= CLICKS]
    if not candidates:
        raise RuntimeError(f"user {user_id} has seen nearly everything: no genre left to click")
    return min(candidates)[1]


def record_clicks(
    conn: psycopg.Connection[Any], user_id: int, genre: str, n: int = CLICKS
) -> list[tuple[int, int]]:
    """Click the n most popular films of the genre the user has not seen; (event_id, item_id)."""
    with conn.transaction():
        rows = conn.execute(
            query(_Q, "click_genre"), {"user_id": user_id, "genre": Jsonb([genre]), "n": n}
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def wait_for_user(
    conn: psycopg.Connection[Any], user_id: int, event_id: int, timeout: float = 120.0
) -> float:
    """Seconds until the stored user vector covers event_id (the worker folded it in)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        row = conn.execute(query(_Q, "user_through"), {"user_id": user_id}).fetchone()
        if row and row[0] is not None and row[0] >= event_id:
            return time.perf_counter() - t0
        time.sleep(0.01)
    raise TimeoutError(f"the worker did not fold user {user_id}'s clicks in within {timeout:.0f}s")


def run_demo(
    url: str,
    *,
    user_id: int = 1,
    genre: str | None = None,
    path: str | Path | None = None,
    text_encoder: Any = None,
    device: str = "auto",
    user_encoder: str = "auto",
    state_path: Path | None = None,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """The whole demo against ``url`` (see module docstring); ``say`` prints each step."""
    from recdb.config import recdb_home
    from recdb.datasets.loader import load_movielens
    from recdb.db import connect, schema
    from recdb.worker import Worker, WorkerConfig
    from recdb.worker.runner import BackgroundWorker, drain

    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    state_path = state_path or recdb_home() / "demo-state.json"

    t0 = time.perf_counter()
    schema.upgrade(url)
    timings["migrate"] = time.perf_counter() - t0

    conn = connect(url, autocommit=True, application_name="recdb demo")
    try:
        say("== 1. load MovieLens-100K")
        counts = load_movielens(conn, path, progress=progress)
        timings["load"] = counts["seconds"]
        say(
            f"   {counts['items']} movies ({counts['items_inserted']} new), "
            f"{counts['events']} ratings ({counts['events_inserted']} new), "
            f"{counts['users']} users in {counts['seconds']:.1f}s"
        )
        removed = forget_previous_clicks(conn, url, state_path)
        if removed:
            say(f"   removed the {removed} clicks of the previous demo run")
        if not conn.execute(query(_Q, "user_exists"), {"user_id": user_id}).fetchone():
            raise ValueError(f"--user {user_id}: no such user in the data (try 1 to 943)")

        say("== 2. encode items and users (in-process worker)")
        t0 = time.perf_counter()
        if text_encoder is None:
            from recdb.encoders import TextEncoder

            text_encoder = TextEncoder(device=device)  # shared by both workers below
            timings["model_load"] = time.perf_counter() - t0
            t0 = time.perf_counter()
        stats = drain(
            url,
            text_encoder=text_encoder,
            device=device,
            user_encoder=user_encoder,
            progress=progress,
        )
        timings["encode"] = time.perf_counter() - t0
        if stats.items_encoded or stats.users_encoded:
            rate = stats.items_encoded / timings["encode"] if timings["encode"] else 0.0
            say(
                f"   {stats.items_encoded} items and {stats.users_encoded} users encoded in "
                f"{timings['encode']:.1f}s ({rate:.0f} items/s)"
            )
        else:
            say("   everything already encoded")
        if stats.parked or stats.errors:
            say(
                f"   warning: {stats.errors} batch errors, {stats.parked} rows parked "
                "(see `recdb status`)"
            )

        before, ms = top(conn, user_id)
        timings["rerank_before_ms"] = ms
        say(f"\n== 3. top {TOP} for user {user_id}  (rerank() in {ms:.1f} ms)")
        say(format_rows(before))

        chosen = pick_genre(conn, user_id, genre)
        clicks = record_clicks(conn, user_id, chosen)
        _remember_clicks(url, state_path, user_id, [e for e, _ in clicks])
        titles = dict(conn.execute(query(_Q, "titles"), {"ids": [i for _, i in clicks]}).fetchall())
        say(
            f"\n== 4. user {user_id} clicks {len(clicks)} {chosen} films: "
            + "; ".join(titles[i] for _, i in clicks)
        )

        after, timings["rerank_after_ms"] = top(conn, user_id)
        fresh = after[0].fresh_events if after else 0
        say(
            f"\n== 5. new top {TOP}, read right away, no worker in between "
            f"(rerank() in {timings['rerank_after_ms']:.1f} ms folded {fresh} event(s) newer "
            f"than the stored user vector)"
        )
        say(format_rows(after, previous=before, highlight=chosen))
        within, ms = top(conn, user_id, 5, {"genres": [chosen]})
        say(f'\n   and within {chosen} (filter => \'{{"genres": ["{chosen}"]}}\', {ms:.1f} ms):')
        say(format_rows(within))

        say("\n== 6. background worker folds the clicks into the stored user vector")
        cfg = WorkerConfig(
            database_url=url, poll_interval=1.0, device=device, user_encoder=user_encoder
        )
        with BackgroundWorker(Worker(cfg, text_encoder=text_encoder)) as background:
            waited = wait_for_user(conn, user_id, max(e for e, _ in clicks))
            timings["worker_catch_up_ms"] = 1000 * waited
            caught_up, _ = top(conn, user_id)
            same = [r.item_id for r in caught_up] == [r.item_id for r in after]
            t1 = time.perf_counter()
            background.stop()
        timings["worker_stop"] = time.perf_counter() - t1
        say(
            f"   worker started, folded the clicks in {1000 * waited:.0f} ms, "
            f"stopped cleanly in {timings['worker_stop']:.2f}s; ranking "
            + ("identical to step 5" if same else "now:\n" + format_rows(caught_up))
        )
    finally:
        conn.close()

    timings["total"] = time.perf_counter() - t_all
    say(
        "\n== timings  "
        + ", ".join(
            f"{k} {v:.1f} ms" if k.endswith("_ms") else f"{k} {v:.1f}s" for k, v in timings.items()
        )
    )
    return DemoResult(
        user_id, chosen, [i for _, i in clicks], before, after, caught_up, fresh, timings, counts
    )


def _mark(row: Row, previous: Sequence[Row] | None) -> str:
    if previous is None:
        return ""
    old = {r.item_id: r.rank for r in previous}
    if row.item_id not in old:
        return "★ new"
    d = old[row.item_id] - row.rank
    return f"↑{d}" if d > 0 else f"↓{-d}" if d < 0 else "="


def format_rows(
    rows: Sequence[Row], previous: Sequence[Row] | None = None, highlight: str | None = None
) -> str:
    """A fixed-width table; with ``previous`` a column marks new entries and rank moves."""
    out = []
    for r in rows:
        mark = _mark(r, previous)
        genres = ", ".join(r.genres[:3])
        if highlight and highlight in r.genres:
            genres = f"*{genres}*"
        line = f"  {r.rank:>2}. "
        if previous is not None:
            line += f"{mark:<6}"
        line += f"{_cut(r.title, 38):<38}  {_cut(genres, 26):<26} {r.score:6.3f}  {r.reason}"
        out.append(line)
    if previous is not None:
        now = {r.item_id for r in rows}
        gone = [r for r in previous if r.item_id not in now]
        if gone:
            out.append(
                "  dropped out: " + "; ".join(f"{_cut(r.title, 30)} (was #{r.rank})" for r in gone)
            )
    return "\n".join(out)


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


# --- CLI -----------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    from recdb.cli.options import add_encoder_options, add_movielens_path_option, add_option

    add_option(
        parser,
        "--user",
        type=int,
        default=1,
        env_var="RECDB_DEMO_USER",
        help="MovieLens user whose ranking is shown (1-943)",
    )
    add_option(
        parser,
        "--genre",
        env_var="RECDB_DEMO_GENRE",
        help="genre of the three demo clicks (default: one the user rarely watches)",
    )
    add_movielens_path_option(parser)
    add_encoder_options(parser)
    add_option(parser, "--no-progress", flag=True, help="no progress bars")


def main(args: argparse.Namespace) -> int:
    from recdb.datasets.movielens import find_movielens
    from recdb.db import database_url

    try:
        find_movielens(args.path)
    except MovieLensNotFound as exc:
        print(f"recdb demo: {exc}", file=sys.stderr)
        return 2
    url = database_url()
    print(f"recdb demo on {url}")
    run_demo(
        url,
        user_id=args.user,
        genre=args.genre,
        path=args.path,
        device=args.device,
        user_encoder=args.user_encoder,
        progress=not args.no_progress,
    )
    return 0
