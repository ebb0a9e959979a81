"""`sasrec-ce`: SASRec trained with full-softmax cross-entropy ("SASRec+", Klenitskiy &
Vasilev, RecSys 2023), item IDs only: the strongest public baseline `recdb eval` compares with.

The network is the reference SASRec (Kang & McAuley 2018, as in its PyTorch port): item +
learned position embeddings, pre-LN blocks of causal self-attention and a point-wise
feed-forward, a final layer norm; the input is the last ``max_len`` items, left-padded.
SASRec+ swaps SASRec's one-negative BCE for cross-entropy over the whole catalogue at every
position (logits = hidden @ item embeddings, tied), which is what makes it strong.

Protocol (same split as every other method, recdb.tools.eval.protocol): trained on every
user's history before the validation interaction; epochs (early stopping) and the
(max_len, dropout) grid are chosen on validation NDCG@k only; the test interaction is ranked
by the chosen model with the validation interaction appended to its input, no retraining,
history excluded. The test targets never enter this module. Seeds are ``seed .. seed+N-1``;
the grid is trained with ``seed``, so its run of the chosen config is that seed's run.

Tooling (torch), never imported by the runtime.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

NAME = "sasrec-ce"
DESCRIPTION = (
    "SASRec+ (Klenitskiy & Vasilev 2023): SASRec with full-softmax cross-entropy, item IDs "
    "only; epochs and (max_len, dropout) chosen on validation NDCG@10; test = mean ± std "
    "over seeds (recdb.tools.eval.sasrec_ce)"
)
DEFAULT_GRID: tuple[tuple[int, float], ...] = ((50, 0.2), (50, 0.5), (200, 0.2), (200, 0.5))


def parse_grid(text: str) -> tuple[tuple[int, float], ...]:
    """``"50:0.2,200:0.5"`` -> ((50, 0.2), (200, 0.5)): the (max_len, dropout) configs."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            length, dropout = part.split(":")
            cfg = (int(length), float(dropout))
        except ValueError:
            raise ValueError(f"grid entry {part!r} is not MAX_LEN:DROPOUT") from None
        if cfg[0] < 1 or not 0.0 <= cfg[1] < 1.0:
            raise ValueError(f"grid entry {part!r}: max_len must be >= 1, dropout in [0, 1)")
        out.append(cfg)
    if not out:
        raise ValueError("the grid is empty")
    return tuple(out)


def format_grid(grid: Sequence[tuple[int, float]]) -> str:
    """The inverse of parse_grid, for --help defaults and the JSON."""
    return ",".join(f"{n}:{d:g}" for n, d in grid)


@dataclass(frozen=True)
class SasrecCeConfig:
    """Everything the baseline runs with; ``time_budget_s`` caps each training (keeping the
    best epoch so far) so one slow config cannot stall the whole eval (a training it cuts
    short is reproducible only on a machine as fast; ``stopped`` in the JSON says so).

    ``patience`` 20: at dropout 0.5 validation NDCG plateaus around epochs 60-90 and climbs
    again; with 10, two of three seeds stopped there (ML-100K test NDCG@10 0.1072 ± 0.0061)
    and with 20 none did (0.1135 ± 0.0006, best epochs 127-161; H200 runs)."""

    seeds: int = 3
    grid: tuple[tuple[int, float], ...] = DEFAULT_GRID
    max_epochs: int = 200
    patience: int = 20  # evaluations without a better validation NDCG
    eval_every: int = 1  # epochs between validation evaluations
    time_budget_s: float | None = 1800.0
    hidden: int = 64
    layers: int = 2
    heads: int = 1
    lr: float = 1e-3
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch threads while training; None: leave as is

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", tuple((int(n), float(d)) for n, d in self.grid))
        for name in ("seeds", "max_epochs", "patience", "eval_every", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"sasrec-ce: {name} must be >= 1")
        if self.heads < 1 or self.hidden % self.heads:
            raise ValueError("sasrec-ce: hidden must be divisible by heads")
        if not self.grid:
            raise ValueError("sasrec-ce: the grid is empty")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError("sasrec-ce: time_budget_s must be > 0 (or None)")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["grid"] = format_grid(self.grid)
        return d


@functools.cache
def _sasrec_class() -> type[Any]:
    """The network class, defined on first use so that importing this module (and with it
    `recdb eval --help`) does not import torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class _Attention(nn.Module):
        """Multi-head self-attention under a given boolean mask (True = may attend)."""

        def __init__(self, hidden: int, heads: int, dropout: float) -> None:
            super().__init__()
            self.heads, self.dropout = heads, dropout
            self.q, self.k, self.v = (nn.Linear(hidden, hidden) for _ in range(3))
            self.out = nn.Linear(hidden, hidden)

        def forward(
            self, query: torch.Tensor, keys: torch.Tensor, allowed: torch.Tensor
        ) -> torch.Tensor:
            b, n, h = query.shape

            def split(x: torch.Tensor) -> torch.Tensor:
                return x.view(b, n, self.heads, h // self.heads).transpose(1, 2)

            a = F.scaled_dot_product_attention(
                split(self.q(query)),
                split(self.k(keys)),
                split(self.v(keys)),
                attn_mask=allowed[:, None],
                dropout_p=self.dropout if self.training else 0.0,
            )
            return self.out(a.transpose(1, 2).reshape(b, n, h))

    class SASRec(nn.Module):
        """The reference SASRec layout: Q = LN(x); x = Q + attn(Q, x); x = LN(x);
        x = x + FFN(x); padding zeroed after every block; a final LN."""

        def __init__(
            self, n_items: int, max_len: int, hidden: int, layers: int, heads: int, dropout: float
        ) -> None:
            super().__init__()
            self.hidden = hidden
            self.item = nn.Embedding(n_items + 1, hidden, padding_idx=0)
            self.pos = nn.Embedding(max_len + 1, hidden, padding_idx=0)
            self.drop = nn.Dropout(dropout)
            self.attn_ln = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(layers))
            self.attn = nn.ModuleList(_Attention(hidden, heads, dropout) for _ in range(layers))
            self.ffn_ln = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(layers))
            self.ffn = nn.ModuleList(
                nn.Sequential(
                    nn.Linear(hidden, hidden),
                    nn.Dropout(dropout),
                    nn.ReLU(),
                    nn.Linear(hidden, hidden),
                    nn.Dropout(dropout),
                )
                for _ in range(layers)
            )
            self.last_ln = nn.LayerNorm(hidden, eps=1e-8)
            for p in self.parameters():  # the reference initialisation
                if p.dim() > 1:
                    nn.init.xavier_normal_(p)
            with torch.no_grad():
                self.item.weight[0].zero_()
                self.pos.weight[0].zero_()

        def forward(self, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
            """(B, L) item rows (0 = padding, left) -> (B, L, hidden) hidden states."""
            keep = (rows > 0).unsqueeze(-1)
            x = self.item(rows) * math.sqrt(self.hidden) + self.pos(positions)
            x = self.drop(x) * keep
            n = rows.shape[1]
            causal = torch.ones(n, n, dtype=torch.bool, device=rows.device).tril()
            # padding is never a key; a position always sees itself (no all-masked row -> no NaN)
            allowed = causal & (
                keep.transpose(1, 2) | torch.eye(n, dtype=torch.bool, device=rows.device)
            )
            for attn_ln, attn, ffn_ln, ffn in zip(
                self.attn_ln, self.attn, self.ffn_ln, self.ffn, strict=True
            ):
                q = attn_ln(x)
                x = q + attn(q, x, allowed)
                x = ffn_ln(x)
                x = (x + ffn(x)) * keep
            return self.last_ln(x)

        def logits(self, h: torch.Tensor) -> torch.Tensor:
            """Scores over the catalogue (rows 1..n), tied to the input embedding."""
            return h @ self.item.weight[1:].T

    return SASRec


def network(
    n_items: int, max_len: int, hidden: int, layers: int, heads: int, dropout: float
) -> Any:
    """A freshly initialised SASRec (an ``nn.Module``) over catalogue rows 1..``n_items``."""
    return _sasrec_class()(n_items, max_len, hidden, layers, heads, dropout)


def _left_pad(seqs: Sequence[np.ndarray], width: int) -> np.ndarray:
    out = np.zeros((len(seqs), width), dtype=np.int64)
    for r, s in enumerate(seqs):
        if len(s):
            out[r, -len(s) :] = s[-width:]
    return out


def _positions(rows: np.ndarray, max_len: int) -> np.ndarray:
    """Position ids of a left-padded (trimmed) block: the last column is always ``max_len``,
    as in a full-width window, so trimming a batch to its longest row changes nothing."""
    n = rows.shape[1]
    return np.where(rows > 0, np.arange(max_len - n + 1, max_len + 1)[None, :], 0)


def _batch(
    rows: np.ndarray, max_len: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, slice]:
    """Tensors of a left-padded block cut to its longest row (a short batch costs less)."""
    import torch

    width = int((rows > 0).sum(1).max()) if len(rows) else 0
    cut = slice(rows.shape[1] - max(width, 1), None)
    block = rows[:, cut]
    return (
        torch.from_numpy(np.ascontiguousarray(block)).to(device),
        torch.from_numpy(_positions(block, max_len)).to(device),
        cut,
    )


def rank(
    net: Any,
    histories: Sequence[np.ndarray],
    max_len: int,
    k: int,
    device: torch.device,
    chunk: int = 256,
) -> np.ndarray:
    """(users, k) catalogue rows (0-based) of the k best items not in each history, from the
    hidden state after the last ``max_len`` items."""
    import torch

    net.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(histories), chunk):
            part = histories[s : s + chunk]
            x, pos, _ = _batch(_left_pad(part, max_len), max_len, device)
            scores = net.logits(net(x, pos)[:, -1]).float()
            for r, h in enumerate(part):
                if len(h):
                    scores[r, torch.as_tensor(h - 1, device=device)] = -math.inf
            out.append(scores.topk(min(k, scores.shape[1]), dim=1).indices.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def ndcg_of(top: np.ndarray, targets: np.ndarray) -> float:
    """Mean NDCG of one target row per ranked row (a miss scores 0), as metrics.evaluate."""
    _, hit_pos = np.nonzero(top == targets[:, None])
    return float((1.0 / np.log2(hit_pos + 2)).sum() / max(len(targets), 1))


@contextlib.contextmanager
def _reproducible(seed: int, device: torch.device, threads: int | None) -> Iterator[None]:
    """Seeded, deterministic kernels; the caller's global torch state comes back after."""
    import torch

    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_threads = torch.get_num_threads()
    prev_fill = torch.utils.deterministic.fill_uninitialized_memory
    devices = [device.index or 0] if device.type == "cuda" else []
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=devices))
        if device.type == "cuda":
            # the fused attention kernels' backward is not deterministic on CUDA (two runs of
            # one seed parted after ~60 epochs); the plain one is, and fast enough here
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        # deterministic mode also NaN-fills every new tensor: pure overhead here (dropout
        # masks over (batch, len, len) attention maps took twice as long on CPU)
        torch.utils.deterministic.fill_uninitialized_memory = False
        if threads:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            torch.set_num_threads(prev_threads)
            torch.utils.deterministic.fill_uninitialized_memory = prev_fill


@dataclass
class Training:
    """One trained (config, seed): the best-validation network and how it got there."""

    max_len: int
    dropout: float
    seed: int
    net: Any  # the SASRec nn.Module
    best_valid: float
    best_epoch: int
    epochs: int
    seconds_per_epoch: float
    seconds: float
    stopped: str  # "epochs", "patience" or "time_budget"
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, valid NDCG@k)

    def summary(self, k: int) -> dict[str, Any]:
        return {
            "max_len": self.max_len,
            "dropout": self.dropout,
            "seed": self.seed,
            f"valid_ndcg@{k}": round(self.best_valid, 6),
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
            "stopped": self.stopped,
            "seconds_per_epoch": round(self.seconds_per_epoch, 3),
            "seconds": round(self.seconds, 1),
        }


def train(
    sequences: Sequence[np.ndarray],
    valid_inputs: Sequence[np.ndarray],
    valid_targets: np.ndarray,
    n_items: int,
    max_len: int,
    dropout: float,
    seed: int,
    cfg: SasrecCeConfig,
    k: int = 10,
    progress: bool = False,
) -> Training:
    """Train on ``sequences`` (catalogue rows 1..n, oldest first; every position predicts the
    next item, as in the reference, only each user's last ``max_len`` + 1 items), early
    stopping on the NDCG@k of ``valid_targets`` (0-based rows) ranked from ``valid_inputs``."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from recdb.encoders import resolve_device

    device = resolve_device(cfg.device)
    started = time.perf_counter()
    seqs = [s[-(max_len + 1) :] for s in sequences if len(s) >= 2]
    if not seqs:
        raise ValueError(f"{NAME}: no user has two training interactions to learn from")
    inputs = _left_pad([s[:-1] for s in seqs], max_len)
    targets = _left_pad([s[1:] for s in seqs], max_len)
    with _reproducible(seed, device, cfg.threads):
        net = network(n_items, max_len, cfg.hidden, cfg.layers, cfg.heads, dropout).to(device)
        # Adam's default betas: with the reference's (0.9, 0.98) training plateaus early
        # (ML-100K, max_len 200, dropout 0.5: valid NDCG@10 0.111 at epoch 62, vs 0.130 at
        # epoch 117, what the issue measured)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=device.type in ("cpu", "cuda"))
        order = np.random.default_rng(seed)
        best_state: dict[str, torch.Tensor] | None = None
        best, best_epoch, bad, stopped = -math.inf, 0, 0, "epochs"
        curve: list[tuple[int, float]] = []
        seconds: list[float] = []
        desc = f"{NAME} {max_len}:{dropout:g} seed {seed}"
        bar = tqdm(range(1, cfg.max_epochs + 1), desc=desc, unit="epoch", disable=not progress,
                   leave=False)  # fmt: skip
        epoch = 0
        for epoch in bar:
            t0 = time.perf_counter()
            net.train()
            perm = order.permutation(len(seqs))
            for s in range(0, len(perm), cfg.batch_size):
                idx = perm[s : s + cfg.batch_size]
                x, pos, cut = _batch(inputs[idx], max_len, device)
                y = torch.from_numpy(np.ascontiguousarray(targets[idx][:, cut])).to(device)
                sel = y > 0
                loss = F.cross_entropy(net.logits(net(x, pos)[sel]), y[sel] - 1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if epoch % cfg.eval_every == 0 or epoch == cfg.max_epochs:
                top = rank(net, valid_inputs, max_len, k, device)
                score = ndcg_of(top, valid_targets)
                curve.append((epoch, score))
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", ndcg=f"{score:.4f}")
                if score > best:
                    best, best_epoch, bad = score, epoch, 0
                    best_state = {n: v.detach().clone() for n, v in net.state_dict().items()}
                else:
                    bad += 1
                    if bad >= cfg.patience:
                        stopped = "patience"
                        seconds.append(time.perf_counter() - t0)
                        break
            seconds.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - started
            if cfg.time_budget_s and elapsed + float(np.mean(seconds)) > cfg.time_budget_s:
                stopped = "time_budget"  # the next epoch would not fit: keep the best so far
                break
        bar.close()
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
    return Training(
        max_len=max_len,
        dropout=dropout,
        seed=seed,
        net=net,
        best_valid=max(best, 0.0),
        best_epoch=best_epoch,
        epochs=epoch,
        seconds_per_epoch=float(np.mean(seconds)) if seconds else 0.0,
        seconds=time.perf_counter() - started,
        stopped=stopped,
        curve=curve,
    )


@dataclass
class Outcome:
    """What the eval records: the first seed's rankings per phase, every seed's test
    rankings, and the trainings (the grid's, then the chosen config's other seeds)."""

    valid_rankings: dict[int, list[int]]
    test_rankings: list[dict[int, list[int]]]  # one per seed, the first seed first
    grid: list[Training]
    seeds: list[Training]  # the chosen config, one per seed (the first is in the grid)
    seconds: float
    device: str
    cfg: SasrecCeConfig
    k: int

    @property
    def chosen(self) -> Training:
        return self.seeds[0]

    def to_json(self) -> dict[str, Any]:
        """The protocol's ``sasrec_ce`` entry: the grid, the chosen config, every seed's
        training, timings."""
        k = self.k
        trainings = [*self.grid, *self.seeds[1:]]
        return {
            "description": DESCRIPTION,
            "config": self.cfg.to_json(),
            "device": self.device,
            "grid": [t.summary(k) for t in self.grid],
            "selected": {"max_len": self.chosen.max_len, "dropout": self.chosen.dropout},
            "seeds": [t.summary(k) for t in self.seeds],
            "recorded_rankings": f"seed {self.chosen.seed}",
            "seconds_per_epoch": round(
                sum(t.seconds_per_epoch * t.epochs for t in trainings)
                / max(sum(t.epochs for t in trainings), 1),
                3,
            ),
            "seconds_per_epoch_selected": round(
                float(np.mean([t.seconds_per_epoch for t in self.seeds])), 3
            ),
            "total_seconds": round(self.seconds, 1),
        }


def fit_and_rank(
    train_history: Mapping[int, Sequence[int]],
    valid_targets: Mapping[int, int],
    test_history: Mapping[int, Sequence[int]],
    test_users: Sequence[int],
    all_items: Sequence[int],
    cfg: SasrecCeConfig,
    k: int = 10,
    progress: bool = False,
) -> Outcome:
    """The whole baseline: the grid on ``train_history`` early-stopped on ``valid_targets``,
    the best config again with the other seeds, then every seed's top-k for ``test_users``
    from ``test_history`` (train + validation). The test targets are not an input."""
    from recdb.encoders import resolve_device

    started = time.perf_counter()
    items = sorted(set(all_items))
    row_of = {it: r + 1 for r, it in enumerate(items)}  # 0 = padding

    def rows(hist: Sequence[int]) -> np.ndarray:
        try:
            return np.array([row_of[i] for i in hist], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"{NAME}: item {exc.args[0]!r} is not in the catalogue") from None

    train_rows = {u: rows(h) for u, h in train_history.items()}
    sequences = [train_rows[u] for u in sorted(train_rows)]
    val_users = sorted(u for u in valid_targets if len(train_rows.get(u, ())))
    val_inputs = [train_rows[u] for u in val_users]
    val_targets = np.array([row_of[valid_targets[u]] - 1 for u in val_users], dtype=np.int64)
    # NDCG over every user with a validation target (one without history is a miss)
    scale = len(val_users) / max(len(valid_targets), 1)

    def fit(max_len: int, dropout: float, seed: int) -> Training:
        t = train(sequences, val_inputs, val_targets, len(items), max_len, dropout, seed, cfg,
                  k, progress)  # fmt: skip
        t.best_valid *= scale
        t.curve = [(e, v * scale) for e, v in t.curve]
        return t

    grid = [fit(n, d, cfg.seed) for n, d in cfg.grid]
    best = max(grid, key=lambda t: t.best_valid)  # ties: the first in grid order
    seeds = [best] + [fit(best.max_len, best.dropout, cfg.seed + i) for i in range(1, cfg.seeds)]

    device = resolve_device(cfg.device)

    def ranked(t: Training, hist: Mapping[int, Sequence[int]], users: Sequence[int]) -> dict:
        users = [u for u in users if len(hist.get(u, ()))]
        top = rank(t.net, [rows(hist[u]) for u in users], t.max_len, k, device)
        return {u: [items[j] for j in row] for u, row in zip(users, top.tolist(), strict=True)}

    return Outcome(
        valid_rankings=ranked(best, train_history, val_users),
        test_rankings=[ranked(t, test_history, test_users) for t in seeds],
        grid=grid,
        seeds=seeds,
        seconds=time.perf_counter() - started,
        device=str(device),
        cfg=cfg,
        k=k,
    )


def seed_summary(
    per_seed: Sequence[Mapping[str, float]], seeds: Sequence[int], k: int
) -> dict[str, Any]:
    """Per-seed NDCG@k / HR@k (metrics.evaluate results), their mean and sample std (ddof=1;
    0 for one seed): what the test figure of ``sasrec-ce`` is."""
    out: dict[str, Any] = {"n": len(per_seed), "seeds": list(seeds)}
    for key in (f"ndcg@{k}", f"hr@{k}"):
        vals = np.array([m[key] for m in per_seed], dtype=np.float64)
        out[key] = [round(float(v), 6) for v in vals]
        out[f"{key}_mean"] = round(float(vals.mean()), 6)
        out[f"{key}_std"] = round(float(vals.std(ddof=1)) if len(vals) > 1 else 0.0, 6)
    return out
