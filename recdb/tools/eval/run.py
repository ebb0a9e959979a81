"""One `recdb eval` run, in a database of its own (dropped and recreated each time):

1. migrate, COPY the items, let the real worker encode them;
2. validation phase: COPY every user's training events, encode users, score the
   validation targets (numbers reported under ``valid``, and the only ones to tune on);
3. test phase: add the validation events (history = train + validation), re-encode and
   score the test targets: the headline numbers.

Each user encoder re-encodes all users (``requeue_all_users`` + worker) and is scored by
``SELECT item_id FROM rerank(user, k => 10)``; the sequence encoder is trained once, inside
the run, on the training interactions. The baselines and rerank()'s own cold-start order
run on the same split in the same run. With ``fresh`` (--fresh N), each encoder's test
measurement is followed by the zero-lag fold measurement of recdb.tools.eval.fresh.

The ``sasrec-ce`` baseline (recdb.tools.eval.sasrec_ce; `recdb eval` runs it unless
--sasrec-ce-seeds 0, run_evaluation only with a ``sasrec_ce_config``) is trained once, when
the first phase records it: on the training interactions, choosing epochs and config on the
validation targets, then ranking the test phase from train + validation. Both phases record
the first seed's rankings; the test entry also carries every seed's figures (``seeds``), the
protocol the grid and timings (``sasrec_ce``).

With ``sequence_seeds`` N > 1 (--sequence-seeds) the sequence encoder is trained N times
(seeds cfg.seed .. cfg.seed+N-1, each on first use) and each model is served and scored
through rerank() in every phase; the ``sequence`` row is the first seed's ranking (the one
--fresh measures), its ``seeds`` entry every seed's NDCG/HR with their mean ± std, and the
protocol's ``sequence_models`` each model's training summary.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from recdb.datasets.movielens import Movie, Rating
from recdb.db.sqlfiles import query
from recdb.tools.eval import metrics, report, sasrec_ce, scoring
from recdb.tools.eval.fresh import measure as measure_fresh
from recdb.tools.eval.fresh import protocol as fresh_protocol
from recdb.tools.eval.knobs import (
    apply_knobs,
    effective_knobs,
    encoder_overrides,
    encoder_settings,
)
from recdb.tools.eval.protocol import HISTORY, SPLIT, K, Phase, phases, sample_users, split_ratings

log = logging.getLogger(__name__)

_Q = "queries/eval.sql"
DEFAULT_DATABASE = "recdb_eval"


def default_encoders() -> tuple[str, ...]:
    """Every user encoder the project has (new ones register in recdb.encoders)."""
    from recdb.encoders import USER_ENCODER_NAMES

    return tuple(USER_ENCODER_NAMES)


def fresh_database(server_url: str, name: str = DEFAULT_DATABASE) -> str:
    """Drop and recreate database ``name`` on the server of ``server_url``; return its URL."""
    from recdb.db import scratch

    try:
        return scratch.recreate(server_url, name)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RuntimeError(
            f"recdb eval needs a database of its own and could not (re)create {name!r} "
            f"({exc}); grant CREATEDB or pass --eval-database NAME of one you own"
        ) from exc


def item_vector_encoders(conn: psycopg.Connection[Any]) -> set[str | None]:
    """The encoders that wrote the item vectors now in the database."""
    return {r[0] for r in conn.execute(query(_Q, "item_vector_encoders"))}


def train_sequence(
    conn: psycopg.Connection[Any],
    ratings: Sequence[Rating],
    splits: Mapping[int, metrics.Split[int]],
    cfg: Any,
    device: str,
    progress: bool,
    seed_offset: int = 0,
) -> dict[str, Any]:
    """Train the sequence encoder on the training interactions only, from the events in the
    database (as `recdb train` does), early-stopping on the validation interactions; the
    test interactions are never in the database. Stores it in the registry (inactive).
    ``seed_offset`` i trains with the config's seed + i (--sequence-seeds)."""
    from recdb.config import TRAIN_TIME_BUDGET_S
    from recdb.sequence import TrainConfig
    from recdb.sequence.data import read

    cfg = cfg or TrainConfig(device=device, time_budget_s=TRAIN_TIME_BUDGET_S)
    if seed_offset:
        cfg = dataclasses.replace(cfg, seed=cfg.seed + seed_offset)
    data = read(conn)
    seqs, valid = {}, {}
    for user, split in splits.items():
        history = list(data.histories.get(user, []))
        train_items = [ratings[i].item_id for i in split.train]
        if split.valid is not None and len(history) == len(split.train) + 1:
            # test phase: the validation event is in the database too; take it out (ties
            # on time may order it before a training event, so remove it by identity)
            v = ratings[split.valid]
            at = max(n for n, e in enumerate(history) if e[0] == v.item_id)
            del history[at]
        if [e[0] for e in history] != train_items:  # the same events, in the split's order
            raise RuntimeError(f"user {user}: events in the database do not match the split")
        if history:
            seqs[user] = history
        if split.valid is not None:
            valid[user] = ratings[split.valid].item_id
    return train_and_store(conn, seqs, valid, data, cfg, progress)


def train_and_store(
    conn: psycopg.Connection[Any],
    seqs: Mapping[int, Any],
    valid: Mapping[int, int],
    data: Any,
    cfg: Any,
    progress: bool,
) -> dict[str, Any]:
    """Train on ``seqs`` (early stopping on ``valid``), store the model (inactive), and
    return what the eval reports of it."""
    from recdb.encoders import resolve_device
    from recdb.sequence import registry, train

    t0 = time.perf_counter()
    model = train(seqs, valid, (data.item_ids, data.text), cfg, progress=progress)
    secs = time.perf_counter() - t0
    with conn.transaction():
        model_id = registry.save(conn, model, data.watermark)
    m = model.metrics
    return {
        "model_id": model_id,
        "train_seconds": round(secs, 1),
        "epochs": m["epochs"],
        "best_epoch": m["best_epoch"],
        "seconds_per_epoch": round(float(m["seconds_per_epoch"]), 4),
        "stopped": m["stopped"],
        "seed": model.cfg.seed,
        "valid_ndcg@10_in_training": m.get("valid_ndcg@10"),
        "device": str(resolve_device(cfg.device)),
        "config": model.cfg.to_json(),
    }


def sasrec_ce_baseline(
    ratings: Sequence[Rating],
    splits: Mapping[int, metrics.Split[int]],
    users: Sequence[int],
    all_items: Sequence[int],
    cfg: sasrec_ce.SasrecCeConfig,
    k: int = K,
    progress: bool = False,
) -> sasrec_ce.Outcome:
    """Train and rank ``sasrec-ce`` on the eval's own split (recdb.tools.eval.protocol),
    whether or not the run scores a validation phase: it learns from the validation
    phase's histories, selects on its targets, and ranks from the test phase's histories.
    The test targets are not handed over."""
    (valid, _), (test, _) = phases(ratings, splits, users, validate=True)
    return sasrec_ce.fit_and_rank(
        valid.history, valid.targets, test.history, users, all_items, cfg, k, progress
    )


@dataclass
class EvalRun:
    """The state one run carries from phase to phase."""

    url: str
    conn: psycopg.Connection[Any]
    ratings: Sequence[Rating]
    splits: Mapping[int, metrics.Split[int]]
    users: list[int]
    n_catalog: int
    k: int
    knobs: dict[str, Any]
    text_encoder: Any
    device: str
    threads: int
    progress: bool
    sequence_config: Any
    fresh: int = 0  # --fresh N: the fold measurement after each test encoder (fresh.py)
    base_settings: dict[str, Any] = field(default_factory=dict)
    text_items: set[str | None] = field(default_factory=set)  # item encoders as loaded
    trained: dict[str, Any] = field(default_factory=dict)  # the sequence model, trained once
    sequence_seeds: int = 1  # --sequence-seeds: models trained, served and scored per phase
    extra_trained: list[dict[str, Any]] = field(default_factory=list)  # seeds 1 .. N-1
    all_items: list[int] = field(default_factory=list)  # the catalogue, sorted
    sasrec_ce_config: sasrec_ce.SasrecCeConfig | None = None  # None: no sasrec-ce baseline
    sasrec_ce_outcome: sasrec_ce.Outcome | None = None  # trained on first use
    results: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def record(
        self, phase: Phase, name: str, ranked: Mapping[int, Sequence[int]], secs: float
    ) -> dict[str, Any]:
        m = metrics.evaluate(
            {u: ranked.get(u, []) for u in phase.targets}, phase.targets, self.n_catalog, self.k
        )
        m["seconds"] = round(secs, 2)
        self.results.setdefault(phase.name, {})[name] = m
        log.info("%s %-18s ndcg@%d %.4f", phase.name, name, self.k, m[f"ndcg@{self.k}"])
        return m

    def record_sasrec_ce(self, phase: Phase) -> None:
        """Record ``sasrec-ce`` in ``phase``, training it first if no phase has yet; the
        test phase also gets every seed's NDCG/HR and their mean ± std."""
        if self.sasrec_ce_config is None:
            return
        if self.sasrec_ce_outcome is None:
            self.sasrec_ce_outcome = sasrec_ce_baseline(
                self.ratings,
                self.splits,
                self.users,
                self.all_items,
                self.sasrec_ce_config,
                self.k,
                self.progress,
            )
        out = self.sasrec_ce_outcome
        if phase.name == "valid":
            self.record(phase, sasrec_ce.NAME, out.valid_rankings, out.seconds)
            return
        m = self.record(phase, sasrec_ce.NAME, out.test_rankings[0], out.seconds)
        per_seed = [
            metrics.evaluate(
                {u: r.get(u, []) for u in phase.targets}, phase.targets, self.n_catalog, self.k
            )
            for r in out.test_rankings
        ]
        m["train_seconds"] = round(out.seconds, 1)
        m["seeds"] = sasrec_ce.seed_summary(per_seed, [t.seed for t in out.seeds], self.k)

    def drain(self, what: str, desc: str, **kw: Any) -> None:
        """Let one in-process worker encode everything queued; ``what`` names it in errors."""
        from recdb.worker.runner import drain

        st = drain(
            self.url,
            text_encoder=self.text_encoder,
            device=self.device,
            progress=self.progress,
            desc=desc,
            **kw,
        )
        if st.errors or st.parked:
            raise RuntimeError(f"worker failed on {what}: {st}")

    def sequence_model(self, i: int = 0) -> dict[str, Any]:
        """The sequence model of seed offset ``i`` (what train_and_store reported), trained
        on first use."""
        if i == 0 and not self.trained:
            self.trained.update(self._train_sequence(0))
        while i > len(self.extra_trained):
            self.extra_trained.append(self._train_sequence(len(self.extra_trained) + 1))
        return self.trained if i == 0 else self.extra_trained[i - 1]

    def _train_sequence(self, i: int) -> dict[str, Any]:
        return train_sequence(
            self.conn,
            self.ratings,
            self.splits,
            self.sequence_config,
            self.device,
            self.progress,
            seed_offset=i,
        )

    def serve_encoder(self, name: str, seed_offset: int = 0) -> None:
        """Make the database serve what encoder ``name`` would in production: its model
        active (the sequence model of ``seed_offset``, trained on first use) and the item
        vectors it reads."""
        from recdb.sequence import registry
        from recdb.worker import requeue_all_items

        if name == "sequence":
            model_id = self.sequence_model(seed_offset)["model_id"]
            if registry.active(self.conn) != model_id:
                registry.activate(self.conn, model_id)
        elif registry.active(self.conn) is not None:
            registry.activate(self.conn, None)  # other encoders run in the text space
        if item_vector_encoders(self.conn) != self.text_items:
            # An earlier encoder rewrote the item vectors (e.g. a trained model's own item
            # space): give this one the vectors it would have in production.
            requeue_all_items(self.conn)

    def measure_encoder(self, phase: Phase, name: str) -> None:
        """Re-encode every user with encoder ``name`` under its knobs, rank through rerank()."""
        from recdb.worker import requeue_all_users

        t0 = time.perf_counter()
        apply_knobs(self.conn, {"settings": encoder_settings(self.knobs, self.base_settings, name)})
        self.serve_encoder(name)
        requeue_all_users(self.conn)
        self.drain(f"users with encoder {name!r}", f"{phase.name} {name}: ", user_encoder=name)
        t1 = time.perf_counter()
        ranked = scoring.rerank_rankings(
            self.url,
            self.users,
            self.k,
            threads=self.threads,
            progress=self.progress,
            desc=f"{phase.name} {name}: rerank",
        )
        t2 = time.perf_counter()
        m = self.record(phase, name, ranked, t2 - t0)
        m["encode_seconds"] = round(t1 - t0, 2)
        if name == "sequence":
            m["train_seconds"] = self.trained["train_seconds"]
        own = encoder_overrides(self.knobs, name)
        if own:
            m["knobs"] = own
        if self.fresh > 0 and phase.name == "test":
            m["fresh"] = measure_fresh(self, phase, name, self.fresh)  # same knobs, model
        if name == "sequence" and self.sequence_seeds > 1:
            m["seeds"] = self.sequence_seed_summary(phase, m)
        # back to the base knobs before the next encoder or phase's baselines
        apply_knobs(self.conn, {"settings": encoder_settings(self.knobs, self.base_settings, "")})
        m["rerank_ms_per_user"] = round(
            1000 * (t2 - t1) * self.threads / max(len(self.users), 1), 2
        )

    def sequence_seed_summary(self, phase: Phase, first: Mapping[str, Any]) -> dict[str, Any]:
        """Serve and score the sequence models of seeds 1 .. N-1 as the first one was (same
        knobs, re-encoded users, rerank()); every seed's figures and their mean ± std."""
        from recdb.worker import requeue_all_users

        per_seed = [first]
        for i in range(1, self.sequence_seeds):
            self.serve_encoder("sequence", seed_offset=i)
            requeue_all_users(self.conn)
            self.drain(
                f"users with sequence seed offset {i}",
                f"{phase.name} sequence +{i}: ",
                user_encoder="sequence",
            )
            ranked = scoring.rerank_rankings(
                self.url,
                self.users,
                self.k,
                threads=self.threads,
                progress=self.progress,
                desc=f"{phase.name} sequence +{i}: rerank",
            )
            m = metrics.evaluate(
                {u: ranked.get(u, []) for u in phase.targets},
                phase.targets,
                self.n_catalog,
                self.k,
            )
            per_seed.append(m)
            key = f"ndcg@{self.k}"
            log.info("%s sequence seed +%d %s %.4f", phase.name, i, key, m[key])
        seeds = [self.sequence_model(i)["seed"] for i in range(self.sequence_seeds)]
        return sasrec_ce.seed_summary(per_seed, seeds, self.k)


def run_evaluation(
    server_url: str,
    items: Sequence[Movie],
    ratings: Sequence[Rating],
    *,
    encoders: Sequence[str] | None = None,
    database: str = DEFAULT_DATABASE,
    k: int = K,
    users: int | None = None,
    seed: int = 0,
    knobs: Mapping[str, Any] | None = None,
    text_encoder: Any = None,
    device: str = "auto",
    validate: bool = True,
    threads: int = 2,
    progress: bool = True,
    dataset: str = "MovieLens-100K",
    sequence_config: Any = None,
    fresh: int = 0,
    sasrec_ce_config: sasrec_ce.SasrecCeConfig | None = None,
    sequence_seeds: int = 1,
) -> dict[str, Any]:
    """Run the whole protocol (module docstring) and return the JSON-ready result;
    ``fresh`` N > 0 adds the zero-lag fold measurement (recdb.tools.eval.fresh), a
    ``sasrec_ce_config`` the ``sasrec-ce`` baseline (recdb.tools.eval.sasrec_ce),
    ``sequence_seeds`` N > 1 N trained sequence models, mean ± std over them."""
    from recdb.datasets.loader import insert_events, movie_rows, upsert_items
    from recdb.datasets.movielens import rating_events
    from recdb.db import connect, schema

    if fresh < 0:
        raise ValueError(f"fresh must be >= 0 (0: off), got {fresh}")
    if sequence_seeds < 1:
        raise ValueError(f"sequence_seeds must be >= 1, got {sequence_seeds}")
    wall0 = time.perf_counter()
    encoders = tuple(encoders) if encoders is not None else default_encoders()
    knobs = dict(knobs or {})
    splits = split_ratings(ratings)
    evaluable = [u for u, s in splits.items() if s.test is not None]
    eval_users = sample_users(evaluable, users, seed)
    all_items = sorted({m.item_id for m in items})

    if text_encoder is None:
        from recdb.encoders import TextEncoder

        text_encoder = TextEncoder(device=device)
    url = fresh_database(server_url, database)
    schema.upgrade(url, embedding_dim=text_encoder.dim)
    conn = connect(url, autocommit=True, application_name="recdb eval")
    run = EvalRun(
        url=url,
        conn=conn,
        ratings=ratings,
        splits=splits,
        users=eval_users,
        n_catalog=len(all_items),
        k=k,
        knobs=knobs,
        text_encoder=text_encoder,
        device=device,
        threads=threads,
        progress=progress,
        sequence_config=sequence_config,
        fresh=fresh,
        all_items=all_items,
        sasrec_ce_config=sasrec_ce_config,
        sequence_seeds=sequence_seeds,
    )
    try:
        apply_knobs(conn, knobs)
        run.base_settings = effective_knobs(conn)["settings"]
        with conn.transaction():
            upsert_items(conn, movie_rows(items))
        t0 = time.perf_counter()
        run.drain("items", "encode ")
        encode_items_s = time.perf_counter() - t0
        run.text_items = item_vector_encoders(conn)

        for phase, new in phases(ratings, splits, eval_users, validate):
            with conn.transaction():
                insert_events(conn, rating_events(ratings[i] for i in new), len(new))
                conn.execute(query(_Q, "refresh_popularity_for_phase"))
            for name, ranked, secs in scoring.baselines(url, phase, all_items, eval_users, k):
                run.record(phase, name, ranked, secs)
            run.record_sasrec_ce(phase)
            for name in encoders:
                run.measure_encoder(phase, name)
        knobs_in_force = effective_knobs(conn)
    finally:
        conn.close()

    protocol = {
        "dataset": dataset,
        "split": SPLIT,
        "history": HISTORY,
        "ranking": f"full catalogue ({len(all_items)} items), user's history excluded; recdb "
        f"methods call rerank(user, k => {k}) after the worker encoded the history",
        "k": k,
        "users": len(eval_users),
        "users_sampled": len(eval_users) < len(evaluable),
        "seed": seed,
        "items": len(all_items),
        "interactions": len(ratings),
        "encoders": list(encoders),
        "text_model": str(getattr(text_encoder, "model_name", "?")),
        "device": str(getattr(text_encoder, "device", device)),
        "database": database,
        "knobs_set": knobs,
        "knobs_in_force": knobs_in_force,
        "baselines": scoring.baseline_descriptions(sasrec_ce_config is not None),
        "sequence_model": {k: v for k, v in run.trained.items() if k != "model_id"} or None,
        "sequence_models": [
            {k: v for k, v in t.items() if k not in ("model_id", "config")}
            for t in ([run.trained] if run.trained else []) + run.extra_trained
        ]
        or None,
        "fresh": fresh_protocol(fresh),
        "sasrec_ce": run.sasrec_ce_outcome.to_json() if run.sasrec_ce_outcome else None,
        "timings_s": {
            "encode_items": round(encode_items_s, 2),
            "wall": round(time.perf_counter() - wall0, 2),
        },
    }
    methods = report.methods(run.results)
    return {"protocol": protocol, "methods": methods, "targets": report.targets(methods)}
