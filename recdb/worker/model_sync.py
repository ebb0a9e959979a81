"""Which vectors this worker serves: the dimensions its text model must fit, the active
trained model (recdb.models) it follows, and the user encoder that serves each batch."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import namedtuple_row

from recdb.worker.config import DimensionMismatch, ModelUnavailable, WorkerConfig
from recdb.worker.sql import fetch

if TYPE_CHECKING:
    from recdb.encoders import UserEncoder
    from recdb.sequence import TrainedModel

log = logging.getLogger(__name__)


class ModelSync:
    """The active model as of the latest batch (None while text vectors are served)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.model: TrainedModel | None = None
        self.model_id: int | None = None
        self.text_dim = 0  # of the text model's vectors
        self.embedding_dim = 0  # of the vector columns, read at connect
        self._warned_text = False

    def check_schema(self, conn: psycopg.Connection[Any], text_dim: int) -> None:
        """Refuse to start on a schema the text model's vectors do not fit."""
        if not fetch(conn, "schema_has_models")[0]:
            raise DimensionMismatch(
                "the database schema is older than this worker (no recdb.models): "
                "run `recdb db upgrade` first"
            )
        self.text_dim = text_dim
        for col in fetch(conn, "embedding_dims", row=namedtuple_row):
            self.embedding_dim = col.dims
            if col.dims != text_dim:
                raise DimensionMismatch(
                    f"the text model produces {text_dim}-d vectors but {col.tbl}.embedding is "
                    f"vector({col.dims}); use a model with {col.dims}-d output (RECDB_MODEL) or "
                    f"migrate a new database with RECDB_EMBEDDING_DIM={text_dim}"
                )
        conn.rollback()

    def sync(self, conn: psycopg.Connection[Any]) -> None:
        """Load the active model when it changed (checked inside every batch transaction,
        after the claim: a batch never writes vectors of a model deactivated before it
        claimed its rows, and an activation racing the batch re-queues the rows after it)."""
        from recdb.sequence import registry

        model_id = registry.active(conn)
        if model_id == self.model_id:
            return
        if model_id is None:
            log.info("no active model: serving text vectors")
            self.model, self.model_id = None, None
            return
        from recdb.encoders import resolve_device

        try:
            model = registry.load(conn, model_id, device=resolve_device(self.config.device))
        except psycopg.OperationalError:
            raise  # the connection, not the model: reconnect and retry
        except Exception as exc:
            raise ModelUnavailable(f"active model {model_id} cannot be loaded: {exc}") from exc
        text_dim, dim = self.text_dim, self.embedding_dim
        if model.text_dim != text_dim or model.dim != dim:
            raise ModelUnavailable(
                f"active model {model_id} maps {model.text_dim}-d text vectors to "
                f"{model.dim}-d vectors, but this worker's text model gives {text_dim}-d and "
                f"the embedding columns are vector({dim}); activate another model "
                f"(SELECT recdb.activate_model(id)) or use the text model it was trained on"
            )
        log.info("serving model %s (valid ndcg@10 %s)", model_id,
                 model.metrics.get("valid_ndcg@10"))  # fmt: skip
        self.model, self.model_id = model, model_id

    def user_encoder(self, configured: UserEncoder) -> UserEncoder:
        """The encoder that serves this batch. auto: the active model, else mean; sequence:
        the active model, else an error; mean and text: the configured one. ``configured`` is
        the worker's user encoder (injected or built from its config); when it is a mean
        encoder it also gives the sequence model's norms."""
        from recdb.encoders import MeanUserEncoder, SequenceUserEncoder  # torch: on first use

        name = self.config.user_encoder
        if name == "text":
            if self.model is not None and not self._warned_text:
                self._warned_text = True
                log.warning(
                    "user encoder 'text' builds user vectors in the text space, but model %s "
                    "serves item vectors in its own space; use auto or sequence",
                    self.model_id,
                )
            return configured
        mean = (
            configured
            if isinstance(configured, MeanUserEncoder)
            else MeanUserEncoder(self.config.device)
        )
        if name == "mean":
            return mean
        if self.model is not None and self.model_id is not None:
            return SequenceUserEncoder(self.model, self.model_id, mean)
        if name == "sequence":
            raise ModelUnavailable(
                "--user-encoder sequence needs an active model: run `recdb train --activate` "
                "(or choose auto, mean or text)"
            )
        return mean
