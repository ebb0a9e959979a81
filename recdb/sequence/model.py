"""SASRec-style causal transformer user encoder whose vectors live in the item search space.

Items are represented as ``normalize(W_text · text(i) + id(i))``: a learned projection of the
frozen text embedding plus, only for items with enough training interactions, a learned ID
vector. A new item with only text therefore still gets a meaningful vector, and the same
vector is both the transformer's input for that item and what the HNSW index searches.
The user vector is the L2-normalised output at the last position of the causal encoder, and
training scores are ``cosine × 1/temperature``, so ranking by pgvector's cosine distance
serves exactly what was trained.

Serialisation is a small self-describing format (magic, JSON header, raw little-endian
float32/int64 arrays in sorted key order) rather than pickle: byte-identical round trips,
and a blob fetched from the database can be loaded without executing code.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Event = tuple[Hashable, str, float | None, Any]  # (item_id, kind, value, timestamp)
ItemTable = Mapping[Hashable, np.ndarray] | tuple[Sequence[Hashable], np.ndarray]

FORMAT = "recdb-seq"
# 2 adds the fold operator (recdb.sequence.fold); version 1 blobs still load (no fold).
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_MAGIC = b"RECDBSEQ"
# Seconds between consecutive events: sessions (minutes) vs revisits (days) behave differently.
GAP_BINS: tuple[float, ...] = (60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400)
# Index 0 is padding in every per-event vocabulary; index 1 is "unknown / not applicable".
_UNK = 1
_RESERVED = 2
_ITEM_REPRS = ("hybrid", "text", "id")
_LOSSES = ("full", "sampled")
_SCHEDULES = ("constant", "cosine", "linear")
_SELECTS = ("plain", "fold")


@dataclass(frozen=True)
class TrainConfig:
    """Architecture + optimisation settings; stored with the weights so a model rebuilds itself.

    ``dim`` is the output (searched) dimension, default the text dimension so vectors fit the
    existing ``vector(D)`` column; ``hidden`` is the transformer width, kept small because
    CPU training cost grows with hidden² per event. Defaults are the best ML-100K validation
    NDCG@10 among CPU-affordable settings (hidden=128: +0.0018 folded validation NDCG@10
    over 3 seeds, the same folded test score, ~2x CPU time; README "Quality");
    dropout 0.5 and temperature matter most, sampled softmax and max_len > 50 hurt.
    Temperature 0.15 (issue #18): served through rerank() in `recdb eval` over 3 seeds,
    validation NDCG@10 0.1274 against 0.2's 0.1249, once the loader kept the input's
    order of events at the same time (an earlier run, on histories whose ties ran by item
    id, had 0.2 ahead: README "Quality").
    ``time_budget_s`` makes the run end in time on slow or busy machines (it trades
    reproducibility of the epoch count for a hard wall-clock bound).
    """

    epochs: int = 200
    max_len: int = 50
    dim: int | None = None
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.5
    lr: float = 2e-3
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"  # decay to 0 at `epochs`
    warmup_epochs: int = 0  # linear warmup from 0 to lr over these epochs
    weight_decay: float = 0.0
    batch_size: int = 128
    min_count: int = 5
    item_repr: Literal["hybrid", "text", "id"] = "hybrid"
    id_dropout: float = 0.0
    temperature: float = 0.15
    learn_temperature: bool = False
    loss: Literal["full", "sampled"] = "full"
    # Each position also predicts the events after the next one, future_targets in all,
    # weighted future_weight each against the next event's 1: the stored vector then holds
    # where the user is heading, and the fold (recdb.sequence.fold) adds the next step.
    future_targets: int = 1
    future_weight: float = 1.0
    # Uniform negatives of the sampled loss (catalogues past FULL_SOFTMAX_MAX_ITEMS).
    # ML-100K, seed 0, validation NDCG@10 / folded: 256 -> 0.1035 / 0.1098, 1024 -> 0.1109 /
    # 0.1173, full softmax 0.1123 / 0.1227 (scripts/sequence_ablation.py).
    negatives: int = 1024
    # At scale (issue #13): each epoch trains on at most this many windows (a fresh random
    # subset per epoch), so an epoch, and the time-budget check after it, stays short at
    # 10^7 events; and validation ranks at most this many users (a fixed seeded sample).
    # ML-100K has ~2,900 windows and 943 validation users: neither cap applies there.
    # Validation also stops at valid_scores (users x items) per epoch: 2,000 users at 10^6
    # items, as it costs a full-catalogue ranking per user.
    epoch_windows: int | None = 100_000
    valid_users: int | None = 5_000
    valid_scores: int = 2_000_000_000
    target_kinds: tuple[str, ...] | None = None  # kinds worth predicting; None = all
    value_bins: tuple[float, ...] = (1.5, 2.5, 3.5, 4.5)
    time_gaps: bool = True
    stride: int = 0  # window stride over long training sequences; 0 = max_len (no overlap)
    recent_windows: int = 0  # train on each user's newest N windows only; 0 = all of them
    seed: int = 0
    device: str = "auto"
    patience: int = 10
    # Which validation score picks the epoch (and drives patience): "plain" = the model over
    # the whole history, "fold" = the vectors the worker stores (recdb.sequence.fold), what
    # rerank() serves; "fold" refits the fold operator every epoch (a few s/epoch more).
    select: Literal["plain", "fold"] = "plain"
    time_budget_s: float | None = None  # stop (keeping the best epoch) before this much wall time
    threads: int | None = None
    eval_k: int = 10

    def __post_init__(self) -> None:
        if self.item_repr not in _ITEM_REPRS:
            raise ValueError(f"item_repr must be one of {_ITEM_REPRS}, got {self.item_repr!r}")
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {self.loss!r}")
        if self.lr_schedule not in _SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {_SCHEDULES}, got {self.lr_schedule!r}")
        if self.select not in _SELECTS:
            raise ValueError(f"select must be one of {_SELECTS}, got {self.select!r}")
        if self.warmup_epochs < 0 or self.recent_windows < 0:
            raise ValueError("warmup_epochs and recent_windows must be >= 0")
        for name in ("epochs", "max_len", "hidden", "layers", "heads", "batch_size", "eval_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.hidden % self.heads:
            raise ValueError("hidden must be divisible by heads")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.id_dropout < 1.0:
            raise ValueError("dropout and id_dropout must be in [0, 1)")
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")
        if self.future_targets < 1 or self.future_weight < 0:
            raise ValueError("future_targets must be >= 1 and future_weight >= 0")
        if self.min_count < 1 or self.patience < 1 or self.stride < 0:
            raise ValueError("min_count and patience must be >= 1, stride >= 0")
        for name in ("epoch_windows", "valid_users", "valid_scores"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (or None for no cap)")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError("time_budget_s must be > 0 (or None for no limit)")
        if list(self.value_bins) != sorted(self.value_bins):
            raise ValueError("value_bins must be sorted")
        object.__setattr__(self, "value_bins", tuple(float(b) for b in self.value_bins))
        if self.target_kinds is not None:
            object.__setattr__(self, "target_kinds", tuple(str(k) for k in self.target_kinds))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["value_bins"] = list(self.value_bins)
        d["target_kinds"] = None if self.target_kinds is None else list(self.target_kinds)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for name in ("value_bins", "target_kinds"):
            if kw.get(name) is not None:
                kw[name] = tuple(kw[name])
        return cls(**kw)


def _seconds(ts: Any) -> float | None:
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return ts.timestamp()
    return float(ts)


@dataclass(slots=True)
class Featurized:
    """One history as index arrays; ``rows`` index an item table (0 = padding)."""

    rows: np.ndarray
    kinds: np.ndarray
    values: np.ndarray
    gaps: np.ndarray

    def tail(self, n: int) -> Featurized:
        return Featurized(self.rows[-n:], self.kinds[-n:], self.values[-n:], self.gaps[-n:])

    def window(self, start: int, stop: int) -> Featurized:
        return Featurized(
            self.rows[start:stop], self.kinds[start:stop],
            self.values[start:stop], self.gaps[start:stop],
        )  # fmt: skip


@dataclass(slots=True)
class Vocab:
    """Per-event categorical features shared by training and inference."""

    kinds: tuple[str, ...]
    value_bins: tuple[float, ...]
    kind_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.kind_index = {k: i + _RESERVED for i, k in enumerate(self.kinds)}

    @property
    def n_kinds(self) -> int:
        return len(self.kinds) + _RESERVED

    @property
    def n_values(self) -> int:
        return len(self.value_bins) + 1 + _RESERVED

    @staticmethod
    def n_gaps() -> int:
        return len(GAP_BINS) + 1 + _RESERVED

    def featurize(self, events: Sequence[Event], row_of: Mapping[Hashable, int]) -> Featurized:
        """Index arrays for a chronological history; events on unknown items are dropped.

        The time gap is measured to the previous event in the full history (before drops
        and truncation), so a window cut from a long history keeps its real gaps.
        """
        rows, kinds, values, gaps = [], [], [], []
        prev: float | None = None
        for item, kind, value, ts in events:
            t = _seconds(ts)
            if prev is None or t is None:
                gap = _UNK
            else:
                gap = _RESERVED + int(np.searchsorted(GAP_BINS, max(t - prev, 0.0), "right"))
            prev = t if t is not None else prev
            row = row_of.get(item)
            if row is None:
                continue
            rows.append(row)
            kinds.append(self.kind_index.get(kind, _UNK))
            if value is None or not math.isfinite(float(value)):
                values.append(_UNK)
            else:
                values.append(
                    _RESERVED + int(np.searchsorted(self.value_bins, float(value), "right"))
                )
            gaps.append(gap)
        return Featurized(
            np.asarray(rows, dtype=np.int64),
            np.asarray(kinds, dtype=np.int64),
            np.asarray(values, dtype=np.int64),
            np.asarray(gaps, dtype=np.int64),
        )


def collate(batch: Sequence[Featurized], device: torch.device) -> dict[str, torch.Tensor]:
    """Right-pad to the longest history: with a causal mask real positions never see padding,
    so no key-padding mask is needed (and no fully-masked rows turn into NaN)."""
    width = max(len(f.rows) for f in batch)
    out = {}
    for name in ("rows", "kinds", "values", "gaps"):
        arr = np.zeros((len(batch), width), dtype=np.int64)
        for i, f in enumerate(batch):
            v = getattr(f, name)
            arr[i, : len(v)] = v
        out[name] = torch.from_numpy(arr).to(device)
    out["lengths"] = torch.tensor([len(f.rows) for f in batch], dtype=torch.int64, device=device)
    return out


class SequenceNet(nn.Module):
    """Item tower (text projection + optional ID embedding) and causal sequence tower."""

    def __init__(self, cfg: TrainConfig, text_dim: int, n_warm: int, vocab: Vocab) -> None:
        super().__init__()
        dim = cfg.dim or text_dim
        self.cfg = cfg
        self.dim = dim
        if cfg.item_repr != "id":
            self.text_proj = nn.Linear(text_dim, dim, bias=False)
            with torch.no_grad():
                if text_dim == dim:  # start from the text space itself: cold items work at once
                    self.text_proj.weight.copy_(torch.eye(dim))
        else:
            self.text_proj = None
        if cfg.item_repr != "text":
            # Sampled softmax (large catalogues) reads a few thousand rows per step: sparse
            # gradients update those rows only, not all 10^6 x dim of them (train.py).
            self.id_emb = nn.Embedding(n_warm + 1, dim, padding_idx=0,
                                       sparse=cfg.loss == "sampled")  # fmt: skip
            std = 1.0 if cfg.item_repr == "id" else 0.1
            nn.init.normal_(self.id_emb.weight, std=std / math.sqrt(dim))
            with torch.no_grad():
                self.id_emb.weight[0].zero_()
        else:
            self.id_emb = None
        h = cfg.hidden
        self.in_proj = nn.Linear(dim, h)
        self.pos = nn.Embedding(cfg.max_len, h)
        self.kind = nn.Embedding(vocab.n_kinds, h, padding_idx=0)
        self.value = nn.Embedding(vocab.n_values, h, padding_idx=0)
        self.gap = nn.Embedding(vocab.n_gaps(), h, padding_idx=0) if cfg.time_gaps else None
        for emb in (self.pos, self.kind, self.value, self.gap):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)
                if emb.padding_idx is not None:
                    with torch.no_grad():
                        emb.weight[emb.padding_idx].zero_()
        self.emb_norm = nn.LayerNorm(h)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            h, cfg.heads, 4 * h, cfg.dropout, activation="gelu", batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(
            layer, cfg.layers, norm=nn.LayerNorm(h), enable_nested_tensor=False
        )
        self.out_proj = nn.Linear(h, dim)
        scale = torch.tensor(math.log(1.0 / cfg.temperature))
        self.log_scale = nn.Parameter(scale, requires_grad=cfg.learn_temperature)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100.0)

    def item_vectors(self, text: torch.Tensor | None, id_idx: torch.Tensor) -> torch.Tensor:
        """Unit item vectors; ``id_idx`` 0 means "no ID embedding" (cold or rare item)."""
        parts = []
        if self.text_proj is not None and text is not None:
            parts.append(self.text_proj(text))
        if self.id_emb is not None:
            parts.append(self.id_emb(id_idx))
        vec = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        return F.normalize(vec.float(), dim=-1)

    def encode(self, item_in: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Unit user vectors at every position: (B, L, dim). Position t sees events <= t."""
        return F.normalize(self.out_proj(self.hidden_states(item_in, batch)).float(), dim=-1)

    def cosine_logits(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """scale × cos(out_proj(h), items) for hidden states h (T, hidden) and unit items (N, dim).

        Same value as ``scale * encode(...) @ items.T`` but the (T, N) product runs at width
        hidden + 1 instead of dim (6x fewer FLOPs at 64 vs 384), with the 1/|u| and the
        scale folded into the left factor so the big matrix is touched only once.
        """
        w, b = self.out_proj.weight, self.out_proj.bias  # (dim, hidden), (dim,)
        inv = self.scale / F.linear(h, w, b).float().norm(dim=-1).clamp(min=1e-12)
        left = torch.cat([h, h.new_ones(h.shape[0], 1)], dim=1) * inv[:, None].to(h.dtype)
        right = torch.cat([items @ w, (items @ b)[:, None]], dim=1)
        return left @ right.T

    def hidden_states(
        self, item_in: torch.Tensor, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """Causal transformer output (B, L, hidden) before the projection to the item space."""
        length = item_in.shape[1]
        x = self.in_proj(item_in * math.sqrt(self.dim))
        x = x + self.pos.weight[:length] + self.kind(batch["kinds"]) + self.value(batch["values"])
        if self.gap is not None:
            x = x + self.gap(batch["gaps"])
        x = self.drop(self.emb_norm(x))
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=x.device)
        return self.encoder(x, mask=mask, is_causal=True)


def _item_table(items: ItemTable) -> tuple[list[Hashable], np.ndarray]:
    if isinstance(items, Mapping):
        ids = list(items)
        mat = np.stack([np.asarray(items[i], dtype=np.float32) for i in ids]) if ids else None
        return ids, mat if mat is not None else np.zeros((0, 0), np.float32)
    ids, mat = items
    mat = np.asarray(mat, dtype=np.float32)
    ids = list(ids)
    if mat.ndim != 2 or len(ids) != len(mat):
        raise ValueError(f"item table: {len(ids)} ids but matrix of shape {mat.shape}")
    return ids, mat


class TrainedModel:
    """A trained sequence encoder plus everything needed to use it on new data.

    Holds weights, config, the warm-item ID map and the event-kind vocabulary; text
    embeddings and item vectors are supplied by the caller (the database keeps them).
    """

    def __init__(
        self,
        net: SequenceNet,
        cfg: TrainConfig,
        text_dim: int,
        warm_ids: Sequence[int],
        kinds: Sequence[str],
        metrics: Mapping[str, Any] | None = None,
        fold: np.ndarray | None = None,
    ) -> None:
        self.net = net.eval()
        # [a, b_0, ..., b_{J-1}]: how rerank() folds unseen events (recdb.sequence.fold).
        self.fold = None if fold is None else np.asarray(fold, dtype=np.float32)
        self.cfg = cfg
        self.text_dim = int(text_dim)
        self.warm_ids = np.asarray(warm_ids, dtype=np.int64)
        self.vocab = Vocab(tuple(kinds), cfg.value_bins)
        self.metrics: dict[str, Any] = dict(metrics or {})
        self._warm_index = {int(i): k + 1 for k, i in enumerate(self.warm_ids.tolist())}

    @classmethod
    def untrained(
        cls, cfg: TrainConfig, text_dim: int, kinds: Sequence[str], warm_ids: Sequence[int] = ()
    ) -> TrainedModel:
        """A freshly initialised model of the given shape: what `recdb bench` times (the
        cost of encoding does not depend on what the weights learned)."""
        torch.manual_seed(cfg.seed)
        vocab = Vocab(tuple(kinds), cfg.value_bins)
        net = SequenceNet(cfg, text_dim, len(warm_ids), vocab)
        return cls(net, cfg, text_dim, warm_ids, vocab.kinds)

    @property
    def dim(self) -> int:
        """Width of item and user vectors (the searched column's dimension)."""
        return self.net.dim

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> TrainedModel:
        self.net.to(device)
        return self

    def has_id(self, item_ids: Sequence[int]) -> np.ndarray:
        """Which items carry a learned ID embedding (the rest are represented by text only)."""
        if self.net.id_emb is None:
            return np.zeros(len(item_ids), dtype=bool)
        return np.array([int(i) in self._warm_index for i in item_ids], dtype=bool)

    @torch.inference_mode()
    def item_vectors(
        self, item_ids: Sequence[int], text_matrix: np.ndarray | None, batch_size: int = 65536
    ) -> np.ndarray:
        """Unit item vectors (n, dim) for any items, including ones never seen in training.

        This is what belongs in the HNSW-indexed column. ``text_matrix`` (n, text_dim) holds
        the frozen text embeddings in ``item_ids`` order (may be None for an ID-only model).
        """
        n = len(item_ids)
        idx = np.array([self._warm_index.get(int(i), 0) for i in item_ids], dtype=np.int64)
        if self.net.id_emb is None:
            idx[:] = 0
        if self.net.text_proj is not None:
            if text_matrix is None:
                raise ValueError("this model needs text embeddings (item_repr != 'id')")
            text_matrix = np.asarray(text_matrix, dtype=np.float32)
            if text_matrix.shape != (n, self.text_dim):
                raise ValueError(
                    f"text_matrix must have shape ({n}, {self.text_dim}), got {text_matrix.shape}"
                )
        out = np.empty((n, self.dim), dtype=np.float32)
        dev = self.device
        for s in range(0, n, batch_size):
            text = None
            if self.net.text_proj is not None and text_matrix is not None:
                text = torch.from_numpy(np.ascontiguousarray(text_matrix[s : s + batch_size]))
                text = text.to(dev)
            ids = torch.from_numpy(idx[s : s + batch_size]).to(dev)
            out[s : s + batch_size] = self.net.item_vectors(text, ids).cpu().numpy()
        return out

    @torch.inference_mode()
    def user_vectors(
        self, histories: Sequence[Sequence[Event]], items: ItemTable, batch_size: int = 256
    ) -> np.ndarray:
        """Unit user vectors (n, dim) from chronological event histories, batched.

        ``items`` maps item_id -> item vector as produced by :meth:`item_vectors` (what the
        searched column stores), either a dict or ``(ids, matrix)``. Events on items missing
        from it are skipped; only the last ``max_len`` remaining events count. A history with
        no usable event gives a zero row (store NULL, fall back to cold start).
        """
        ids, mat = _item_table(items)
        if len(ids) and mat.shape[1] != self.dim:
            raise ValueError(f"item vectors must have {self.dim} columns, got {mat.shape[1]}")
        row_of = {i: r + 1 for r, i in enumerate(ids)}
        table = torch.zeros((len(ids) + 1, self.dim), dtype=torch.float32)
        if len(ids):
            table[1:] = torch.from_numpy(np.ascontiguousarray(mat))
        dev = self.device
        table = table.to(dev)
        feats = [self.vocab.featurize(h, row_of).tail(self.cfg.max_len) for h in histories]
        out = np.zeros((len(feats), self.dim), dtype=np.float32)
        live = [i for i, f in enumerate(feats) if len(f.rows)]
        for s in range(0, len(live), batch_size):
            chunk = live[s : s + batch_size]
            batch = collate([feats[i] for i in chunk], dev)
            hidden = self.net.encode(table[batch["rows"]], batch)
            last = hidden[torch.arange(len(chunk), device=dev), batch["lengths"] - 1]
            out[chunk] = last.cpu().numpy()
        return out

    def score_scale(self) -> float:
        """1/temperature: logits = scale × cosine (ranking only needs the cosine)."""
        return float(self.net.scale.detach().cpu())

    # ---- serialisation -----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Deterministic blob: same weights/config/maps -> same bytes (safe to diff and hash)."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        state["__warm_ids__"] = torch.from_numpy(self.warm_ids.copy())
        if self.fold is not None:
            state["__fold__"] = torch.from_numpy(self.fold.copy())
        tensors, blobs, offset = [], [], 0
        for name in sorted(state):
            t = state[name]
            if t.is_floating_point():
                arr, dtype = t.to(torch.float32).numpy().astype("<f4"), "f4"
            else:
                arr, dtype = t.to(torch.int64).numpy().astype("<i8"), "i8"
            raw = arr.tobytes(order="C")
            tensors.append({"name": name, "dtype": dtype, "shape": list(arr.shape),
                            "offset": offset, "nbytes": len(raw)})  # fmt: skip
            blobs.append(raw)
            offset += len(raw)
        # Wall-clock figures differ run to run; keep only what makes the bytes reproducible.
        keep = {
            k: v for k, v in self.metrics.items()
            if k.startswith("valid_") or k in ("epochs", "best_epoch")
        }  # fmt: skip
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "config": self.cfg.to_json(),
            "text_dim": self.text_dim,
            "kinds": list(self.vocab.kinds),
            "metrics": keep,
            "tensors": tensors,
        }
        head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        return b"".join([_MAGIC, struct.pack("<Q", len(head)), head, *blobs])

    @classmethod
    def from_bytes(cls, data: bytes, device: str | torch.device = "cpu") -> TrainedModel:
        """Rebuild a model from :meth:`to_bytes` output (no pickle, no code execution)."""
        data = bytes(data)
        if not data.startswith(_MAGIC):
            raise ValueError("not a recdb sequence model blob")
        (n,) = struct.unpack_from("<Q", data, len(_MAGIC))
        start = len(_MAGIC) + 8
        header = json.loads(data[start : start + n])
        if header.get("format") != FORMAT or header.get("version") not in _READABLE_VERSIONS:
            raise ValueError(f"unsupported model format {header.get('format')!r}")
        base = start + n
        state: dict[str, torch.Tensor] = {}
        for t in header["tensors"]:
            raw = data[base + t["offset"] : base + t["offset"] + t["nbytes"]]
            arr = np.frombuffer(raw, dtype="<" + t["dtype"]).reshape(t["shape"]).copy()
            state[t["name"]] = torch.from_numpy(arr)
        cfg = TrainConfig.from_json(header["config"])
        warm = state.pop("__warm_ids__").numpy()
        fold = state.pop("__fold__", None)
        vocab = Vocab(tuple(header["kinds"]), cfg.value_bins)
        net = SequenceNet(cfg, header["text_dim"], len(warm), vocab)
        net.load_state_dict(state, strict=True)
        return cls(
            net.to(device), cfg, header["text_dim"], warm, vocab.kinds, header["metrics"],
            None if fold is None else fold.numpy(),
        )  # fmt: skip
