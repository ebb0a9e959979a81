"""Training for the sequence user encoder: next-item prediction at every position.

SASRec-style: each user's chronological training events are cut into windows of at most
``max_len``; at every position the model predicts the next item with a softmax over the
whole catalogue (cheap at catalogue sizes up to ~10^5 and stronger than sampled negatives),
with scores ``cosine × 1/temperature`` so that serving by cosine matches training. Early
stopping watches the validation interaction's NDCG@k ranked against the full catalogue
minus the user's training items, i.e. the same protocol as ``recdb.tools.eval.metrics``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from recdb.encoders.text import resolve_device
from recdb.sequence.fold import STEPS, fit_fold, stored_vectors
from recdb.sequence.model import (
    Event,
    Featurized,
    SequenceNet,
    TrainConfig,
    TrainedModel,
    Vocab,
    collate,
)

# Selecting epochs on the folded score refits the fold every epoch on one history cut per
# user (the final fit takes fold.CUTS_PER_USER), warm-started: SELECT_FOLD_STEPS steps after
# the first epoch's fold.STEPS. ~1.5 s per epoch on ML-100K, one thread.
SELECT_FOLD_CUTS = 1
SELECT_FOLD_STEPS = 30

TextEmb = Mapping[Hashable, np.ndarray] | tuple[Sequence[Hashable], np.ndarray]


def text_table(text_emb: TextEmb) -> tuple[list[Hashable], np.ndarray]:
    """(ids, float32 matrix) from a dict (sorted by id when sortable) or an (ids, matrix) pair."""
    if isinstance(text_emb, Mapping):
        ids = list(text_emb)
        with contextlib.suppress(TypeError):
            ids = sorted(ids)
        mat = np.stack([np.asarray(text_emb[i], dtype=np.float32) for i in ids])
    else:
        ids, mat = list(text_emb[0]), np.asarray(text_emb[1], dtype=np.float32)
    if mat.ndim != 2 or len(ids) != len(mat) or not len(ids):
        raise ValueError(f"text embeddings: {len(ids)} ids but matrix of shape {mat.shape}")
    if len(set(ids)) != len(ids):
        raise ValueError("text embeddings: duplicate item ids")
    if not np.isfinite(mat).all():
        raise ValueError("text embeddings contain NaN or infinity")
    return ids, np.ascontiguousarray(mat)


@dataclass(slots=True)
class _Window:
    user: int
    start: int  # first input position (targets are start+1 .. stop)
    stop: int
    count_from: int  # positions before this (relative) are scored by an earlier window


def _windows(n_events: list[int], max_len: int, stride: int, recent: int = 0) -> list[_Window]:
    """Cover every (input, next) pair once, latest window aligned to the end of history.

    Windows overlap when stride < max_len; a target inside an overlap is scored only in
    the earlier window, where it has the longest context. ``recent`` > 0 keeps only each
    user's newest ``recent`` windows.
    """
    out = []
    for user, n in enumerate(n_events):
        stop = n - 1
        kept = 0
        while stop > 0 and (not recent or kept < recent):
            kept += 1
            start = max(0, stop - max_len)
            count_from = 0 if start == 0 else max(0, stop - start - stride)
            out.append(_Window(user, start, stop, count_from))
            stop -= stride
    return out


@contextlib.contextmanager
def _reproducible(seed: int, device: torch.device, threads: int | None) -> Iterator[None]:
    """Seeded, deterministic kernels, restoring the caller's global torch state afterwards."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_threads = torch.get_num_threads()
    prev_fill = torch.utils.deterministic.fill_uninitialized_memory
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        # Deterministic mode also NaN-fills every new tensor: pure overhead (~15% of a CPU
        # epoch) since nothing here reads uninitialised memory.
        torch.utils.deterministic.fill_uninitialized_memory = False
        if threads:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            torch.set_num_threads(prev_threads)
            torch.utils.deterministic.fill_uninitialized_memory = prev_fill


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def rank_metrics(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    exclude: Sequence[np.ndarray],
    targets: np.ndarray,
    k: int = 10,
    chunk: int | None = None,
) -> dict[str, float]:
    """Full-catalogue HR@k / NDCG@k of one target row per user, excluded rows never ranked.

    rank = 1 + #(unexcluded items scoring strictly higher); a target that is itself
    excluded counts as a miss, as in ``recdb.tools.eval.metrics.evaluate``. ``chunk`` users
    at a time (default: ~2^26 scores, 256 MB, whatever the catalogue's size).
    """
    hits = ndcg = 0.0
    n = len(targets)
    chunk = chunk or max(1, min(1024, (1 << 26) // max(1, item_vecs.shape[0])))
    for s in range(0, n, chunk):
        scores = user_vecs[s : s + chunk].float() @ item_vecs.float().T
        rows = torch.arange(scores.shape[0], device=scores.device)
        tgt = torch.as_tensor(targets[s : s + chunk], device=scores.device)
        mask = torch.zeros_like(scores, dtype=torch.bool)
        for r, ex in enumerate(exclude[s : s + chunk]):
            if len(ex):
                mask[r, torch.as_tensor(ex, device=scores.device)] = True
        tscore = scores[rows, tgt]
        rank = ((scores > tscore[:, None]) & ~mask).sum(1) + 1
        ok = (rank <= k) & ~mask[rows, tgt]
        hits += float(ok.sum())
        ndcg += float((ok / torch.log2(rank.float() + 1)).sum())
    return {f"hr@{k}": hits / max(n, 1), f"ndcg@{k}": ndcg / max(n, 1)}


def train(
    sequences: Mapping[Hashable, Sequence[Event]],
    valid: Mapping[Hashable, Hashable],
    text_emb: TextEmb,
    cfg: TrainConfig | None = None,
    *,
    progress: bool = True,
) -> TrainedModel:
    """Train on chronological training events; early-stop on ``valid`` NDCG@k.

    ``sequences[user]`` is that user's training part only, oldest first, as
    ``(item_id, kind, value, timestamp)``; ``valid[user]`` is the held-out next item.
    ``text_emb`` must cover every item in ``sequences`` and defines the catalogue the
    softmax (and validation ranking) runs over. Returns the best-validation model.
    """
    started = time.perf_counter()
    cfg = cfg or TrainConfig()
    device = resolve_device(cfg.device)
    ids, text = text_table(text_emb)
    row_of = {i: r + 1 for r, i in enumerate(ids)}  # 0 = padding
    missing = sorted({repr(e[0]) for s in sequences.values() for e in s if e[0] not in row_of})
    if missing:
        raise ValueError(f"items without text embeddings: {', '.join(missing[:5])}")

    counts = Counter(e[0] for s in sequences.values() for e in s)
    min_count = 1 if cfg.item_repr == "id" else cfg.min_count
    warm = [] if cfg.item_repr == "text" else [i for i in ids if counts[i] >= min_count]
    warm_index = {i: k + 1 for k, i in enumerate(warm)}
    catalog_id_idx = np.array([warm_index.get(i, 0) for i in ids], dtype=np.int64)
    vocab = Vocab(tuple(sorted({str(e[1]) for s in sequences.values() for e in s})),
                  cfg.value_bins)  # fmt: skip

    users = list(sequences)
    feats = [vocab.featurize(sequences[u], row_of) for u in users]
    # Next-item targets: every event, or only events of target_kinds (a skip or dislike is
    # context for what comes next, not something to recommend); 0 = not scored.
    if cfg.target_kinds is None:
        targets = [f.rows for f in feats]
    else:
        wanted = [vocab.kind_index[k] for k in cfg.target_kinds if k in vocab.kind_index]
        targets = [np.where(np.isin(f.kinds, wanted), f.rows, 0) for f in feats]
    futures = None
    if cfg.future_targets > 1:
        futures = [_future_targets(t, cfg.future_targets, cfg.future_weight) for t in targets]
    windows = [
        w
        for w in _windows(
            [len(f.rows) for f in feats], cfg.max_len, cfg.stride or cfg.max_len, cfg.recent_windows
        )
        if targets[w.user][w.start + 1 + w.count_from : w.stop + 1].any()
    ]
    valid = validation_sample(valid, cfg, len(ids))
    val_users = [k for k, u in enumerate(users) if valid.get(u) in row_of]
    val_feats = [feats[k].tail(cfg.max_len) for k in val_users]
    val_ctx = [k for k, f in zip(val_users, val_feats, strict=True) if len(f.rows)]
    val_feats = [f for f in val_feats if len(f.rows)]
    val_targets = np.array([row_of[valid[users[k]]] - 1 for k in val_ctx], dtype=np.int64)
    val_exclude = [np.unique(feats[k].rows - 1) for k in val_ctx]
    val_histories = [sequences[users[k]] for k in val_ctx]
    key = f"ndcg@{cfg.eval_k}"

    with _reproducible(cfg.seed, device, cfg.threads):
        net = SequenceNet(cfg, text.shape[1], len(warm), vocab).to(device)
        sparse = [net.id_emb.weight] if net.id_emb is not None and net.id_emb.sparse else []
        params = [p for p in net.parameters() if p.requires_grad and not _among(p, sparse)]
        # fused: the default foreach AdamW is ~15x slower per step on CPU (measured 150 vs 10 ms)
        opts: list[torch.optim.Optimizer] = [
            torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        ]
        if sparse:  # lazy Adam: moments and weights of the rows a step touched only
            opts.append(torch.optim.SparseAdam(sparse, lr=cfg.lr))
        scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda"
                                      and not torch.cuda.is_bf16_supported())  # fmt: skip
        cat_text = torch.from_numpy(text).to(device)
        cat_ids = torch.from_numpy(catalog_id_idx).to(device)
        order_rng = np.random.default_rng(cfg.seed)
        n_items = len(ids)
        steps_per_epoch = max(1, math.ceil(len(windows) / cfg.batch_size))
        lr_at = _lr_schedule(cfg, steps_per_epoch)
        step = 0

        def item_table(training: bool, rows: torch.Tensor | None = None) -> torch.Tensor:
            """Unit vectors of the catalogue with a zero padding row 0, or of ``rows``
            (catalogue rows, 0 = padding) only: the sampled loss runs the item tower over
            what a step touches, not over 10^6 items."""
            text_in, idx = cat_text, cat_ids
            if rows is not None:
                text_in, idx = cat_text[(rows - 1).clamp(min=0)], cat_ids[(rows - 1).clamp(min=0)]
            if training and cfg.id_dropout > 0:
                drop = torch.rand(len(idx), device=device) < cfg.id_dropout
                idx = torch.where(drop, 0, idx)
            vecs = net.item_vectors(text_in, idx)
            if rows is not None:
                return torch.where((rows > 0)[:, None], vecs, 0.0)
            return torch.cat([vecs.new_zeros(1, vecs.shape[1]), vecs])

        @torch.inference_mode()
        def evaluate() -> dict[str, float]:
            net.eval()
            if not val_feats:
                return {}
            table = item_table(False)
            outs = []
            for s in range(0, len(val_feats), 512):
                batch = collate(val_feats[s : s + 512], device)
                with _autocast(device):
                    h = net.encode(table[batch["rows"]], batch)
                rows = torch.arange(len(batch["lengths"]), device=device)
                outs.append(h[rows, batch["lengths"] - 1])
            return rank_metrics(torch.cat(outs), table[1:], val_exclude, val_targets, cfg.eval_k)

        fold_w: np.ndarray | None = None

        def evaluate_fold() -> dict[str, float]:
            """The validation score of the vectors the worker would store (select="fold"):
            the fold refitted from the previous epoch's weights, all event kinds counted +1."""
            nonlocal fold_w
            if not val_feats:
                return {}
            model = TrainedModel(net, cfg, text.shape[1], warm, vocab.kinds)
            fold_w = fit_fold(model, sequences, (ids, text), seed=cfg.seed,
                              steps=SELECT_FOLD_STEPS if fold_w is not None else STEPS,
                              init=fold_w, cuts=SELECT_FOLD_CUTS)  # fmt: skip
            if fold_w is None:
                return {}
            model.fold = fold_w
            vecs = model.item_vectors(ids, text)
            users_v = stored_vectors(model, val_histories, (ids, vecs), {})
            m = rank_metrics(torch.from_numpy(users_v), torch.from_numpy(vecs), val_exclude,
                             val_targets, cfg.eval_k)  # fmt: skip
            return {f"fold_{k}": v for k, v in m.items()}

        best_state, best, best_epoch, bad = None, -math.inf, 0, 0
        history: list[dict[str, float]] = []
        seconds: list[float] = []
        stopped = "epochs"
        bar = tqdm(range(1, cfg.epochs + 1), desc="sequence", unit="epoch", disable=not progress)
        for epoch in bar:
            t0 = time.perf_counter()
            net.train()
            perm = order_rng.permutation(len(windows))[: cfg.epoch_windows]
            total, n_tgt = 0.0, 0  # n_tgt: scored positions per epoch
            for s in range(0, len(perm), cfg.batch_size):
                wins = [windows[i] for i in perm[s : s + cfg.batch_size]]
                loss, n = _step_loss(net, wins, feats, targets, item_table, cfg, device, n_items,
                                     futures)  # fmt: skip
                if lr_at is not None:
                    for opt in opts:
                        for group in opt.param_groups:
                            group["lr"] = lr_at(step)
                step += 1
                for opt in opts:
                    opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                for opt in opts:
                    scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, 5.0)
                for p in sparse:
                    _clip_sparse_grad(p, 5.0)
                for opt in opts:
                    scaler.step(opt)
                scaler.update()
                total += float(loss.detach()) * n
                n_tgt += n
            m = evaluate()
            if cfg.select == "fold":
                m.update(evaluate_fold())
            seconds.append(time.perf_counter() - t0)
            lr_now = float(opts[0].param_groups[0]["lr"])
            m = {"epoch": epoch, "loss": total / max(n_tgt, 1), "lr": lr_now, **m}
            history.append(m)
            bar.set_postfix(loss=f"{m['loss']:.3f}", **({key: f"{m[key]:.4f}"} if key in m else {}))
            # "fold" without enough data for a fold (tiny) scores as "plain"
            score = m.get(f"fold_{key}", m.get(key, -float(m["loss"])))
            if score > best:
                best, best_epoch, bad = score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if val_feats and bad >= cfg.patience:
                    stopped = "patience"
                    break
            elapsed = time.perf_counter() - started
            if cfg.time_budget_s and elapsed + float(np.mean(seconds)) > cfg.time_budget_s:
                stopped = "time_budget"  # the next epoch would not fit: keep the best so far
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()

    best_m = history[best_epoch - 1] if history else {}
    metrics = {  # None rather than NaN when there was no validation: JSON/jsonb-safe
        f"valid_ndcg@{cfg.eval_k}": best_m.get(key),
        f"valid_hr@{cfg.eval_k}": best_m.get(f"hr@{cfg.eval_k}"),
        "epochs": len(history),
        "best_epoch": best_epoch,
        "seconds_per_epoch": float(np.mean(seconds)) if seconds else 0.0,
        "stopped": stopped,
        "train_targets": n_tgt,  # of the last epoch
        "windows": len(windows),
        "windows_per_epoch": min(len(windows), cfg.epoch_windows or len(windows)),
        "valid_users": len(val_ctx),
        "history": history,
    }
    if cfg.select == "fold":
        metrics[f"valid_fold_ndcg@{cfg.eval_k}"] = best_m.get(f"fold_{key}")
    model = TrainedModel(net, cfg, text.shape[1], warm, vocab.kinds, metrics)
    t0 = time.perf_counter()
    with _reproducible(cfg.seed, device, cfg.threads):
        model.fold = fit_fold(model, sequences, (ids, text), seed=cfg.seed)
    model.metrics["fold_seconds"] = round(time.perf_counter() - t0, 2)
    if model.fold is not None:
        model.metrics["fold_weights"] = [round(float(w), 4) for w in model.fold]
    return model


def validation_sample(valid: Mapping[Hashable, Hashable], cfg: TrainConfig, n_items: int) -> dict:
    """At most ``cfg.valid_users`` of the validation users, and at most ``valid_scores``
    user x item scores, a sample fixed by the seed: ranking 10^6 users against 10^6 items
    every epoch would cost more than the epoch."""
    keys = list(valid)
    cap = max(1, cfg.valid_scores // max(n_items, 1))
    if cfg.valid_users is not None:
        cap = min(cap, cfg.valid_users)
    if len(keys) > cap:
        pick = np.random.default_rng(cfg.seed).choice(len(keys), cap, replace=False)
        keys = [keys[i] for i in np.sort(pick)]
    return {u: valid[u] for u in keys}


def _among(p: torch.Tensor, tensors: Sequence[torch.Tensor]) -> bool:
    return any(p is t for t in tensors)


def _clip_sparse_grad(p: torch.Tensor, max_norm: float) -> None:
    """clip_grad_norm_ for a sparse (embedding) gradient: its touched rows' norm."""
    if p.grad is None:
        return
    p.grad = p.grad.coalesce()
    norm = float(p.grad.values().norm())
    if norm > max_norm:
        p.grad.mul_(max_norm / (norm + 1e-6))


def _lr_schedule(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float] | None:
    """Learning rate by optimiser step: linear warmup over ``warmup_epochs``, then constant
    or a cosine / linear decay reaching 0 at ``epochs``; None when it is constant lr."""
    if cfg.lr_schedule == "constant" and not cfg.warmup_epochs:
        return None
    warm = cfg.warmup_epochs * steps_per_epoch
    total = max(cfg.epochs * steps_per_epoch, warm + 1)

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        frac = (step - warm) / (total - warm)
        if cfg.lr_schedule == "cosine":
            return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
        if cfg.lr_schedule == "linear":
            return cfg.lr * max(0.0, 1.0 - frac)
        return cfg.lr

    return lr_at


def _step_loss(
    net: SequenceNet,
    wins: list[_Window],
    feats: list[Featurized],
    targets: list[np.ndarray],
    item_table: Callable[..., torch.Tensor],
    cfg: TrainConfig,
    device: torch.device,
    n_items: int,
    futures: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[torch.Tensor, int]:
    """Mean next-item cross entropy over the scored positions of a batch of windows;
    with ``futures`` (_future_targets, per user), each position's weighted mean over the
    events after it."""
    inputs = [feats[w.user].window(w.start, w.stop) for w in wins]
    batch = collate(inputs, device)
    width = batch["rows"].shape[1]
    tgt = np.zeros((len(wins), width), dtype=np.int64)
    for i, w in enumerate(wins):
        nxt = targets[w.user][w.start + 1 : w.stop + 1]
        tgt[i, w.count_from : len(nxt)] = nxt[w.count_from :]
    target = torch.from_numpy(tgt).to(device)
    sel = target > 0
    n_tgt = int(sel.sum())
    fut = fut_w = None
    if futures is not None:
        rows = np.zeros((len(wins), width, cfg.future_targets), dtype=np.int64)
        wts = np.zeros((len(wins), width, cfg.future_targets), dtype=np.float32)
        for i, w in enumerate(wins):
            fr, fw = futures[w.user]
            rows[i, w.count_from : w.stop - w.start] = fr[w.start + w.count_from : w.stop]
            wts[i, w.count_from : w.stop - w.start] = fw[w.start + w.count_from : w.stop]
        fut = torch.from_numpy(rows).to(device)[sel]  # (T, future_targets), 0 = none
        fut_w = torch.from_numpy(wts).to(device)[sel]
    with _autocast(device):
        if cfg.loss == "full":
            table = item_table(True)
            h = net.hidden_states(table[batch["rows"]], batch)[sel]  # (T, hidden)
            logits = net.cosine_logits(h, table[1:]).float()
            if fut is None:
                return F.cross_entropy(logits, target[sel] - 1), n_tgt
            nll = -logits.log_softmax(-1).gather(1, (fut - 1).clamp(min=0))
            return _weighted_mean(nll, fut_w), n_tgt
        # The item tower runs over the rows this step reads (inputs, targets, uniform
        # negatives), so a step costs the same at 10^3 or 10^6 items.
        neg = torch.randint(n_items, (cfg.negatives,), device=device) + 1
        pos_rows = target[sel][:, None] if fut is None else fut
        need, at = torch.unique(
            torch.cat([batch["rows"].reshape(-1), pos_rows.reshape(-1), neg]), return_inverse=True
        )
        table = item_table(True, need)
        n_in, n_pos = batch["rows"].numel(), pos_rows.numel()
        h = net.hidden_states(table[at[:n_in].view_as(batch["rows"])], batch)[sel]
        pos_v = table[at[n_in : n_in + n_pos]].view(*pos_rows.shape, -1)
        neg_v = table[at[n_in + n_pos :]]
        user = F.normalize(net.out_proj(h).float(), dim=-1)
        if fut is None:
            pos = (user * pos_v[:, 0]).sum(-1, keepdim=True)
            negs = user @ neg_v.T
            negs = negs.masked_fill(neg[None, :] == target[sel][:, None], -math.inf)
            logits = net.scale * torch.cat([pos, negs], dim=1)
            loss = F.cross_entropy(logits.float(), torch.zeros(n_tgt, dtype=torch.long,
                                                               device=device))  # fmt: skip
            return loss, n_tgt
        # A negative that is one of the position's targets is not a negative for any of them
        pos = net.scale * (user[:, None, :] * pos_v).sum(-1)  # (T, future_targets)
        is_target = ((neg[None, None, :] == fut[:, :, None]) & (fut_w[:, :, None] > 0)).any(1)
        negs = (net.scale * (user @ neg_v.T)).masked_fill(is_target, -math.inf)
        nll = torch.logaddexp(pos, negs.logsumexp(-1, keepdim=True)) - pos
        return _weighted_mean(nll, fut_w), n_tgt


def _weighted_mean(nll: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over positions of each position's weighted mean over its targets."""
    return ((nll * weights).sum(1) / weights.sum(1).clamp(min=1e-12)).mean()


def _future_targets(target: np.ndarray, width: int, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, weights), each (n, width): row [t, j] is the target of event t + 1 + j
    (0 = none: past the history's end, or not a target kind), weighted 1 for the next
    event (j = 0) and ``weight`` after it."""
    n = len(target)
    rows = np.zeros((n, width), dtype=np.int64)
    for j in range(width):
        rows[: max(0, n - 1 - j), j] = target[1 + j :]
    wts = np.where(rows > 0, np.float32(weight), np.float32(0.0))
    wts[:, 0] = np.where(rows[:, 0] > 0, 1.0, 0.0)
    return rows, wts.astype(np.float32)


def validation_metrics(
    model: TrainedModel,
    sequences: Mapping[Hashable, Sequence[Event]],
    valid: Mapping[Hashable, Hashable],
    text_emb: TextEmb,
    k: int = 10,
) -> dict[str, float]:
    """HR/NDCG@k of any trained model on a validation split, scored exactly as train()
    scores its own epochs: the fair way to compare a new model with the one in service
    (the old one's stored metrics were measured on older data)."""
    ids, text = text_table(text_emb)
    row_of = {i: r for r, i in enumerate(ids)}
    users = [u for u in sequences if valid.get(u) in row_of and sequences[u]]
    if not users:
        return {f"hr@{k}": 0.0, f"ndcg@{k}": 0.0}
    vecs = model.item_vectors(ids, text)
    uvecs = model.user_vectors([sequences[u] for u in users], (ids, vecs))
    exclude = [np.unique([row_of[e[0]] for e in sequences[u] if e[0] in row_of]) for u in users]
    targets = np.array([row_of[valid[u]] for u in users], dtype=np.int64)
    return rank_metrics(torch.from_numpy(uvecs), torch.from_numpy(vecs), exclude, targets, k)
