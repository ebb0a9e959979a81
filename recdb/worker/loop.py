"""The encoding worker: claims queued items and users, encodes them, writes vectors back.

One batch = one transaction: claim queue rows (FOR UPDATE SKIP LOCKED), encode, write
the vectors and delete the claimed rows, commit. A crash anywhere before the commit
leaves the rows queued for the next worker; any number of workers can run side by side.
NOTIFY on `recdb_work` only wakes the worker early; polling still runs, so a lost
notification delays work by at most the poll interval.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from recdb import config, db
from recdb.config import NOTIFY_CHANNEL, WORKER_USER_ENCODERS, env
from recdb.db.sqlfiles import query

log = logging.getLogger(__name__)

_Q = "queries/worker.sql"


def q(name: str) -> str:
    return query(_Q, name)


@dataclass
class WorkerConfig:
    """Knobs of one worker process (the CLI fills them from options / RECDB_* vars)."""

    database_url: str | None = None
    batch_size: int = config.WORKER_BATCH_SIZE
    user_batch_size: int = config.WORKER_USER_BATCH_SIZE
    poll_interval: float = config.WORKER_POLL_INTERVAL_S
    device: str = "auto"
    # auto: the active trained model (recdb.models) when there is one, else mean.
    user_encoder: str = "auto"
    model: str | None = None
    max_attempts: int = config.WORKER_MAX_ATTEMPTS
    backoff_seconds: float = config.WORKER_BACKOFF_S
    max_history: int = config.WORKER_MAX_HISTORY
    popularity_interval: float = config.WORKER_POPULARITY_INTERVAL_S
    heartbeat_interval: float = config.WORKER_HEARTBEAT_INTERVAL_S
    claim_timeout: float = config.WORKER_CLAIM_TIMEOUT_S
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    )

    def __post_init__(self) -> None:
        for name in ("batch_size", "user_batch_size", "max_attempts", "max_history"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {self.poll_interval}")
        if self.user_encoder not in WORKER_USER_ENCODERS:
            raise ValueError(
                f"unknown user encoder {self.user_encoder!r}; "
                f"valid: {', '.join(WORKER_USER_ENCODERS)}"
            )


@dataclass
class WorkerStats:
    items_encoded: int = 0
    users_encoded: int = 0
    batches: int = 0
    errors: int = 0
    parked: int = 0
    seconds: float = 0.0


class DimensionMismatch(RuntimeError):
    """The model's vectors do not fit the embedding columns fixed by the first migration."""


class ModelUnavailable(RuntimeError):
    """The active model cannot be served by this worker: stop, instead of parking every row."""


class Worker:
    """Drains recdb.item_queue then recdb.user_queue; see the module docstring."""

    def __init__(
        self, config: WorkerConfig | None = None, text_encoder: Any = None, user_encoder: Any = None
    ) -> None:
        """Encoders may be injected (tests, notebooks); by default they are built from config."""
        self.config = config or WorkerConfig()
        self.stats = WorkerStats()
        self._text_encoder = text_encoder
        self._user_encoder: Any = user_encoder
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._listener: psycopg.Connection[Any] | None = None
        self._last_heartbeat = 0.0
        self._last_popularity = 0.0
        self._on_batch: list[Any] = []  # callables(stats), e.g. the systemd watchdog ping
        self._once = False
        self._model: Any = None  # the active TrainedModel, None while text vectors are served
        self._model_id: int | None = None
        self._embedding_dim = 0  # of the vector columns, read at connect
        self._warned_text = False

    # --- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to exit after the batch in progress (thread-safe, signal-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> bool:
        """Interruptible sleep; True when woken by stop()."""
        return self._stop.wait(seconds)

    def add_batch_hook(self, hook: Any) -> None:
        """Call ``hook(stats)`` after every batch and every idle wait slice (watchdogs,
        progress marks)."""
        self._on_batch.append(hook)

    @property
    def text_encoder(self) -> Any:
        """The text encoder, loaded on first use (share it between in-process workers)."""
        self.load_encoders()
        return self._text_encoder

    def load_encoders(self) -> None:
        from recdb.encoders import TextEncoder, get_user_encoder
        from recdb.encoders.users import MeanUserEncoder

        cfg = self.config
        if self._text_encoder is None:
            self._text_encoder = TextEncoder(cfg.model or env("MODEL"), device=cfg.device)
        if self._user_encoder is not None:
            return
        if cfg.user_encoder in ("mean", "auto", "sequence"):
            self._user_encoder = MeanUserEncoder(cfg.device)
        else:
            self._user_encoder = get_user_encoder(cfg.user_encoder, self._text_encoder)

    def _check_dimensions(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.execute(q("schema_has_models")).fetchone()[0]:
            raise DimensionMismatch(
                "the database schema is older than this worker (no recdb.models): "
                "run `recdb db upgrade` first"
            )
        want = self._text_encoder.dim
        for table, dims in conn.execute(q("embedding_dims")).fetchall():
            self._embedding_dim = dims
            if dims != want:
                raise DimensionMismatch(
                    f"the text model produces {want}-d vectors but {table}.embedding is "
                    f"vector({dims}); use a model with {dims}-d output (RECDB_MODEL) or migrate "
                    f"a new database with RECDB_EMBEDDING_DIM={want}"
                )
        conn.rollback()

    def _connect(self) -> None:
        self._close()
        name = f"recdb worker {self.config.worker_id}"[:63]
        self._conn = db.connect(self.config.database_url, application_name=name)
        self._listener = db.connect(
            self.config.database_url,
            autocommit=True,
            application_name=name + " listen",
            vector=False,
        )
        self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self._conn.execute(
            "SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
            (f"{int(self.config.claim_timeout * 1000)}",),
        )
        self._conn.commit()
        self._check_dimensions(self._conn)
        with self._conn.transaction():
            self._conn.execute(q("forget_stale_workers"))
            self._conn.execute(
                q("register_worker"),
                {
                    "worker_id": self.config.worker_id,
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "device": str(self._text_encoder.device),
                    "user_encoder": self.config.user_encoder,
                },
            )

    def _close(self) -> None:
        for c in (self._conn, self._listener):
            if c is not None:
                with contextlib.suppress(Exception):  # closing a broken connection
                    c.close()
        self._conn = self._listener = None

    def run(self, once: bool = False) -> WorkerStats:
        """Work until stop() (or, with once=True, until both queues are drained)."""
        started = time.monotonic()
        self._once = once
        self.load_encoders()
        backoff = 1.0
        try:
            while not self.stopping:
                try:
                    if self._conn is None:
                        self._connect()
                        backoff = 1.0
                    if self._loop(once):
                        break
                except psycopg.OperationalError as exc:
                    # Whether psycopg has flagged the connection closed yet is a race with
                    # the server going away; either way the cure is a fresh connection.
                    log.warning("database error (%s); reconnecting in %.0fs", exc, backoff)
                    self.stats.errors += 1
                    self._close()
                    if self.sleep(backoff):
                        break
                    backoff = min(backoff * 2, 30.0)
        finally:
            self.stats.seconds = time.monotonic() - started
            self._finish()
        return self.stats

    def _finish(self) -> None:
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.rollback()
                self._heartbeat(force=True)
                self._conn.execute(q("stop_worker"), {"worker_id": self.config.worker_id})
                self._conn.commit()
            except psycopg.Error as exc:
                log.warning("could not record the worker's stop: %s", exc)
        self._close()

    # --- the loop -------------------------------------------------------------------------

    def _loop(self, once: bool) -> bool:
        """Process until idle; True when the run should end (once-mode drained)."""
        while not self.stopping:
            did = self.process_items() or self.process_users()
            if did:
                self._after_batch()
                continue
            self._maybe_refresh_popularity(force=once)
            self._heartbeat()
            if once:
                return True
            self._wait()
        return True

    def _after_batch(self) -> None:
        self.stats.batches += 1
        self._heartbeat()
        for hook in self._on_batch:
            hook(self.stats)

    def _wait(self) -> None:
        """Block until a NOTIFY, the poll interval or stop(), in short slices."""
        assert self._listener is not None
        deadline = time.monotonic() + self.config.poll_interval
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for _ in self._listener.notifies(timeout=min(left, 0.5), stop_after=1):
                return
            for hook in self._on_batch:
                hook(self.stats)

    def _heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_heartbeat < self.config.heartbeat_interval:
            return
        assert self._conn is not None
        s = self.stats
        self._conn.execute(
            q("heartbeat"),
            {
                "worker_id": self.config.worker_id,
                "items": s.items_encoded,
                "users": s.users_encoded,
                "batches": s.batches,
                "errors": s.errors,
                "model_id": self._model_id,
            },
        )
        self._conn.commit()
        self._last_heartbeat = now

    def _maybe_refresh_popularity(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_popularity < self.config.popularity_interval:
            return
        assert self._conn is not None
        self._conn.execute(q("refresh_popularity"))
        self._conn.commit()
        self._last_popularity = now

    # --- items ----------------------------------------------------------------------------

    def process_items(self, only: list[int] | None = None) -> bool:
        """One item batch; True when any queue row was claimed."""
        return self._process("items", self.config.batch_size, only)

    def process_users(self, only: list[int] | None = None) -> bool:
        """One user batch; True when any queue row was claimed."""
        return self._process("users", self.config.user_batch_size, only)

    def _process(self, kind: str, limit: int, only: list[int] | None) -> bool:
        conn = self._conn
        assert conn is not None
        claim = "claim_items" if kind == "items" else "claim_users"
        # once-mode (and targeted retries) ignore backoff timing so a drain terminates.
        params = {"limit": limit, "only": only, "ignore_backoff": only is not None or self._once}
        ids: list[int] = []
        try:
            rows = conn.execute(q(claim), params).fetchall()
            if not rows:
                conn.rollback()
                return False
            ids = [r[0] for r in rows]
            if kind == "items":
                encoded = self._encode_items(conn, ids)
                conn.commit()
                if encoded:
                    # Events on these items committed while the batch ran were invisible to
                    # its in-transaction requeue; a worker may have built those users from
                    # the old item vectors. A second sweep, now that ours are visible,
                    # queues them again.
                    conn.execute(q("requeue_item_users"), {"ids": encoded})
                    conn.commit()
            else:
                self._encode_users(conn, ids)
                conn.commit()
            return True
        except (psycopg.OperationalError, ModelUnavailable):
            raise
        except Exception as exc:  # isolate the poison row(s), keep going
            conn.rollback()
            self.stats.errors += 1
            if only is not None and len(only) == 1:
                self._record_failure(kind, only, exc)
                return True
            log.warning("%s batch failed (%s); retrying its rows one by one", kind, exc)
            for one in ids:
                if self.stopping:
                    break
                self._process(kind, 1, [one])
            return True

    def _record_failure(self, kind: str, ids: list[int], exc: Exception) -> None:
        conn = self._conn
        assert conn is not None
        error = f"{type(exc).__name__}: {exc}".strip()
        parked = conn.execute(
            q("fail_items" if kind == "items" else "fail_users"),
            {
                "ids": ids,
                "error": error,
                "backoff": self.config.backoff_seconds,
                "max_attempts": self.config.max_attempts,
            },
        ).fetchall()
        conn.commit()
        n_parked = sum(1 for (is_parked,) in parked if is_parked)
        self.stats.parked += n_parked
        log.error(
            "%s %s failed (%s)%s",
            kind[:-1],
            ids,
            error,
            "; parked" if n_parked else "; will retry with backoff",
        )

    # --- the active model ------------------------------------------------------------------

    def _sync_model(self, conn: psycopg.Connection[Any]) -> None:
        """Load the active model when it changed (checked inside every batch transaction,
        after the claim: a batch never writes vectors of a model deactivated before it
        claimed its rows, and an activation racing the batch re-queues the rows after it)."""
        from recdb.sequence import registry

        model_id = registry.active(conn)
        if model_id == self._model_id:
            return
        if model_id is None:
            log.info("no active model: serving text vectors")
            self._model, self._model_id = None, None
            return
        from recdb.encoders import resolve_device

        try:
            model = registry.load(conn, model_id, device=resolve_device(self.config.device))
        except psycopg.OperationalError:
            raise  # the connection, not the model: reconnect and retry
        except Exception as exc:
            raise ModelUnavailable(f"active model {model_id} cannot be loaded: {exc}") from exc
        text_dim, dim = self._text_encoder.dim, self._embedding_dim
        if model.text_dim != text_dim or model.dim != dim:
            raise ModelUnavailable(
                f"active model {model_id} maps {model.text_dim}-d text vectors to "
                f"{model.dim}-d vectors, but this worker's text model gives {text_dim}-d and "
                f"the embedding columns are vector({dim}); activate another model "
                f"(SELECT recdb.activate_model(id)) or use the text model it was trained on"
            )
        log.info("serving model %s (valid ndcg@10 %s)", model_id,
                 model.metrics.get("valid_ndcg@10"))  # fmt: skip
        self._model, self._model_id = model, model_id

    def _user_encoder_name(self) -> str:
        name = self.config.user_encoder
        if name == "auto":
            return "sequence" if self._model is not None else "mean"
        if name == "text" and self._model is not None and not self._warned_text:
            self._warned_text = True
            log.warning(
                "user encoder 'text' builds user vectors in the text space, but model %s "
                "serves item vectors in its own space; use auto or sequence",
                self._model_id,
            )
        if name == "sequence" and self._model is None:
            raise ModelUnavailable(
                "--user-encoder sequence needs an active model: run `recdb train --activate` "
                "(or choose auto, mean or text)"
            )
        return name

    # --- items ----------------------------------------------------------------------------

    def _encode_items(self, conn: psycopg.Connection[Any], ids: list[int]) -> list[int]:
        """Encode and write the claimed items; returns the ids whose vectors were written."""
        from recdb.encoders import item_text

        model_name = str(getattr(self._text_encoder, "model_name", "text"))
        locked = conn.execute(
            q("lock_items"), {"ids": ids, "model_name": model_name}, binary=True
        ).fetchall()
        existing = {r[0] for r in conn.execute(q("items_exist"), {"ids": ids}).fetchall()}
        got = {r[0] for r in locked}
        # Deleted items: nothing to encode. Locked by an app update in flight: leave queued.
        done = [i for i in ids if i not in existing] + sorted(got)
        if locked:
            self._sync_model(conn)
            item_ids = [r[0] for r in locked]
            keys = [
                text_key(model_name, item_text(title, body, attrs))
                for _, title, body, attrs, *_ in locked
            ]
            # Only new or changed texts go through the transformer; a re-queue after a
            # model activation just re-projects the stored text vectors.
            stale = [
                n for n, r in enumerate(locked) if not r[6] and (r[4] != keys[n] or r[5] is None)
            ]
            text = np.zeros((len(locked), self._text_encoder.dim), dtype=np.float32)
            for n, r in enumerate(locked):
                if r[5] is not None:
                    text[n] = r[5]
            if stale:
                texts = [item_text(*locked[n][1:4]) for n in stale]
                text[stale] = flush_tiny(self._text_encoder.encode(texts))
            if not np.isfinite(text).all():
                bad = [item_ids[i] for i in np.where(~np.isfinite(text).all(axis=1))[0]]
                raise ValueError(f"encoder produced non-finite values for items {bad}")
            if self._model is None:
                vectors, encoder = text, model_name
            else:
                vectors = flush_tiny(self._model.item_vectors(item_ids, text))
                encoder = f"sequence:{self._model_id}"
            conn.execute(
                q("write_items"),
                {
                    "ids": item_ids,
                    "vectors": list(vectors),
                    "text_vectors": list(text),
                    "text_keys": keys,
                    "encoder": encoder,
                },
            )
        conn.execute(q("delete_items"), {"ids": done})
        self.stats.items_encoded += len(locked)
        return [r[0] for r in locked]

    # --- users ----------------------------------------------------------------------------

    def _encode_users(self, conn: psycopg.Connection[Any], ids: list[int]) -> None:
        row_ids = [r[0] for r in conn.execute(q("lock_user_rows"), {"ids": ids}).fetchall()]
        self._sync_model(conn)
        encoder = self._user_encoder_name()
        n = len(ids)
        per_user = conn.execute(
            q("user_events"), {"users": ids, "max_history": self.config.max_history}, binary=True
        ).fetchall()
        through = np.zeros(n, dtype=np.int64)
        counts = np.zeros(n, dtype=np.int32)
        last_at: list[Any] = [None] * n
        for ui, _items, _weights, thru, count, last in per_user:
            through[ui], counts[ui], last_at[ui] = thru, count, last
        lengths = [len(r[1]) for r in per_user]
        user_index = np.repeat(np.array([r[0] for r in per_user], dtype=np.int64), lengths)
        item_ids = np.fromiter(
            (i for r in per_user for i in r[1]), dtype=np.int64, count=sum(lengths)
        )
        weights = np.fromiter(
            (w for r in per_user for w in r[2]), dtype=np.float32, count=sum(lengths)
        )

        uniq = np.unique(item_ids)
        if encoder == "sequence":
            vec_ids, item_vecs = self._model_item_vectors(conn, uniq)
        else:
            vec_rows = conn.execute(
                q("item_vectors"), {"ids": uniq.tolist()}, binary=True
            ).fetchall()
            vec_ids = np.array([r[0] for r in vec_rows], dtype=np.int64)
            item_vecs = (
                np.stack([r[1] for r in vec_rows])
                if vec_rows
                else np.zeros((0, self._embedding_dim), dtype=np.float32)
            )
        # Events on items without a vector yet carry no direction; they still count as seen
        # (and the item's first encoding queues the user again).
        rows, keep = _positions(item_ids, vec_ids)

        if encoder == "text":
            titles = dict(conn.execute(q("item_titles"), {"ids": uniq.tolist()}).fetchall())
            histories: list[list[tuple[str, float, Any]]] = [[] for _ in range(n)]
            for seq, (ui, item, w, k) in enumerate(
                zip(user_index.tolist(), item_ids.tolist(), weights.tolist(), keep, strict=True)
            ):
                if k:
                    histories[ui].append((titles[item], w, seq))
            vectors, norms = self._user_encoder.encode(histories)
        else:
            vectors, norms = self._mean_encoder().encode(
                n, user_index[keep], rows[keep], weights[keep], item_vecs
            )
            if encoder == "sequence":
                vectors, norms = self._sequence_users(conn, ids, through, vec_ids, item_vecs, norms)

        vectors = flush_tiny(vectors)
        conn.execute(
            q("write_users"),
            {
                "ids": ids,
                "vectors": [v if nrm > 0 else None for v, nrm in zip(vectors, norms, strict=True)],
                "norms": norms.astype(np.float32).tolist(),
                "through": through.tolist(),
                "last_at": last_at,
                "counts": counts.tolist(),
                "encoder": encoder if encoder != "sequence" else f"sequence:{self._model_id}",
            },
        )
        conn.execute(q("delete_user_rows"), {"row_ids": row_ids})
        self.stats.users_encoded += n

    def _mean_encoder(self) -> Any:
        from recdb.encoders.users import MeanUserEncoder

        if isinstance(self._user_encoder, MeanUserEncoder):
            return self._user_encoder
        return MeanUserEncoder(self.config.device)

    def _model_item_vectors(
        self, conn: psycopg.Connection[Any], item_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The active model's item vectors, computed from the stored text vectors: the
        user encoding does not depend on how far the item re-projection has got."""
        rows = conn.execute(
            q("item_text_vectors"), {"ids": item_ids.tolist()}, binary=True
        ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        if not rows:
            return ids, np.zeros((0, self._embedding_dim), dtype=np.float32)
        return ids, self._model.item_vectors(ids.tolist(), np.stack([r[1] for r in rows]))

    def _sequence_users(
        self,
        conn: psycopg.Connection[Any],
        ids: list[int],
        through: np.ndarray,
        vec_ids: np.ndarray,
        item_vecs: np.ndarray,
        mean_norms: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Users through the active sequence model. The stored norm is the weighted sum's
        length (at least 1), as for the mean encoder, so rerank()'s zero-lag fold gives a
        new event the same pull whichever encoder built the stored vector."""
        model = self._model
        histories: list[list[Any]] = [[] for _ in ids]
        rows = conn.execute(
            q("user_sequences"),
            {"users": ids, "through": through.tolist(), "max_len": model.cfg.max_len},
        ).fetchall()
        for ui, items, kinds, vals, ts in rows:
            histories[ui] = list(zip(items, kinds, vals, ts, strict=True))
        vectors = model.user_vectors(histories, (vec_ids.tolist(), item_vecs))
        alive = np.abs(vectors).sum(axis=1) > 0
        norms = np.where(alive, np.maximum(mean_norms, 1.0), 0.0).astype(np.float32)
        return vectors, norms


def text_key(model_name: str, text: str) -> str:
    """Identifies the text vector's input: the same text under the same model needs no
    new encoding."""
    return hashlib.sha1(f"{model_name}\n{text}".encode()).hexdigest()


def flush_tiny(vectors: np.ndarray) -> np.ndarray:
    """Zero components below 1e-20: pgvector rejects float4 products that underflow, and
    rerank() scales stored vectors by decayed weights down to ~1e-13."""
    vectors = np.array(vectors, dtype=np.float32, copy=True)
    vectors[np.abs(vectors) < 1e-20] = 0.0
    return vectors


def _positions(wanted: np.ndarray, have: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each wanted id in `have` (vectorised lookup) and whether it is there."""
    if not len(have):
        return np.zeros(len(wanted), dtype=np.int64), np.zeros(len(wanted), dtype=bool)
    order = np.argsort(have)
    pos = np.minimum(np.searchsorted(have[order], wanted), len(have) - 1)
    rows = order[pos]
    return rows, have[rows] == wanted


def requeue_all_users(conn: psycopg.Connection[Any]) -> int:
    """Queue every user with events (e.g. after switching the user encoder)."""
    cur = conn.execute(q("requeue_all_users"))
    return cur.rowcount


def requeue_all_items(conn: psycopg.Connection[Any]) -> int:
    """Queue every item (e.g. after switching the text model)."""
    cur = conn.execute(q("requeue_all_items"))
    return cur.rowcount


def unpark(conn: psycopg.Connection[Any]) -> None:
    """Give parked rows a fresh set of attempts (after fixing what made them fail)."""
    conn.execute(q("unpark"))
