"""The model's own zero-lag fold: how rerank() counts events the worker has not encoded yet.

rerank() cannot run the transformer, so between an event and the worker's update it folds
the event into the stored user vector in SQL. The mean encoder's algebra (stored weighted
sum + each event's weight x item vector) is not what a sequence model does: on
MovieLens-100K it recovered only 44% of what the newest three events are worth. A trained
model therefore ships a fold operator fitted to its own behaviour:

    u' = normalize(a * u + sum_j (b_j * item_j + c_j * next_j))    j = 0: the newest event

where item_j is the event's item vector and next_j the model's own output for a history of
that one item ("what follows it", stored per item by the worker in recdb.item_next), with
the scalars a, b_0 .. b_{J-1}, c_0 .. c_{J-1} (older events share the last ones) fitted on
the training sequences: cut each history at a random point, take the model's vector for
the prefix as the stored u, fold the next 1..J events, and maximise the model's own
(scaled cosine, softmax over the catalogue) likelihood of the event that followed. On
MovieLens-100K (3 newest events folded) item vectors alone recover the worker's quality
(NDCG@10 0.0975 vs 0.0959 offline); with next_j the fold scores 0.1093. Applied with
pgvector arithmetic: one extra key lookup per folded event.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from recdb.sequence.model import Event, TrainedModel

# Fresh-event positions with a weight of their own (older ones share the last weight).
POSITIONS = 8
# The newest events the worker folds into a stored vector instead of reading them through
# the model (stored_vectors). MovieLens-100K, NDCG@10 without rerank()'s priors, by K:
# validation 0: 0.1096, 1: 0.1177, 3: 0.1211, 8: 0.1237 (test 0.0959 / 0.1044 / 0.1039 /
# 0.1095). 8 was best on validation but cost the cold-start protocol's sequence lift
# (recdb eval --cold-items, test: 2.21 with 0, 1.98 with 8, 2.09 with 3; target 2.0): 3 is
# within 2% of 8 on validation and keeps it.
STORED_FOLD_EVENTS = 3
# History cuts per user, and the longest stored prefix that matters (the model reads max_len).
CUTS_PER_USER = 4
# Users the fit reads at most (a seeded sample beyond): its cost stays bounded at scale.
MAX_USERS = 5000
STEPS = 150
LR = 0.1
# Past this many items the softmax runs over the targets plus a uniform sample.
FULL_SOFTMAX_ITEMS = 50_000
SAMPLED_ITEMS = 8192


def successor_vectors(model: TrainedModel, ids: Sequence[Hashable], vecs: np.ndarray) -> np.ndarray:
    """The model's user vector after a history of just item i, for each item: what it
    predicts follows i. Kind, value and time gap unknown: the fold does not have them."""
    return model.user_vectors([[(i, "", None, None)] for i in ids], (list(ids), vecs))


def fit_fold(
    model: TrainedModel,
    sequences: Mapping[Hashable, Sequence[Event]],
    items: tuple[Sequence[Hashable], np.ndarray],
    seed: int = 0,
    *,
    steps: int = STEPS,
    init: np.ndarray | None = None,
    cuts: int = CUTS_PER_USER,
) -> np.ndarray | None:
    """[a, b_0, ..., b_{J-1}, c_0, ..., c_{J-1}] (all > 0, J = POSITIONS) for ``model``,
    or None without enough data.

    ``items`` = (ids, text matrix) as for training; ``sequences`` the training histories.
    ``init`` (weights from an earlier fit) starts the fit there, so fewer ``steps`` (and
    ``cuts`` per user) do: what selecting epochs on the folded score (TrainConfig.select)
    refits every epoch with.
    """
    ids, text = items
    vecs = model.item_vectors(list(ids), text)
    row_of = {i: r for r, i in enumerate(ids)}
    rng = np.random.default_rng(seed)
    prefixes: list[Sequence[Event]] = []
    fresh: list[list[int]] = []
    targets: list[int] = []
    users = list(sequences)
    if len(users) > MAX_USERS:
        users = [users[i] for i in sorted(rng.choice(len(users), MAX_USERS, replace=False))]
    for user in users:
        seq = sequences[user]
        known = [e for e in seq if e[0] in row_of]
        n = len(known)
        for _ in range(cuts):
            m = int(rng.integers(1, POSITIONS + 1))
            if n - m - 1 < 1:
                continue
            cut = int(rng.integers(max(1, n - m - 1 - model.cfg.max_len), n - m))
            prefixes.append(known[:cut])
            fresh.append([row_of[e[0]] for e in known[cut : cut + m]][::-1])  # newest first
            targets.append(row_of[known[cut + m][0]])
    if len(targets) < 50:
        return None
    stored = torch.from_numpy(model.user_vectors(prefixes, (list(ids), vecs)))
    table = torch.from_numpy(vecs)
    idx = torch.zeros(len(targets), POSITIONS, dtype=torch.long)
    mask = torch.zeros(len(targets), POSITIONS)
    for k, f in enumerate(fresh):
        idx[k, : len(f)] = torch.tensor(f)
        mask[k, : len(f)] = 1.0
    tgt = torch.tensor(targets)
    # "What follows" vectors of the folded items only (not of 10^6 catalogue items)
    used = torch.unique(idx[mask > 0])
    nexts = torch.zeros(len(ids), vecs.shape[1])
    nexts[used] = torch.from_numpy(
        successor_vectors(model, [ids[r] for r in used.tolist()], vecs[used.numpy()])
    )
    if len(ids) > FULL_SOFTMAX_ITEMS:  # targets first, then a uniform sample of the rest
        pool = torch.unique(torch.cat([tgt, torch.from_numpy(
            rng.choice(len(ids), SAMPLED_ITEMS, replace=False))]))  # fmt: skip
        tgt = torch.searchsorted(pool, tgt)
        table_out = table[pool]
    else:
        table_out = table
    scale = model.score_scale()
    gen = torch.Generator().manual_seed(seed)
    log_w = 0.01 * torch.randn(1 + 2 * POSITIONS, generator=gen)
    if init is not None:
        log_w = torch.from_numpy(np.log(np.asarray(init, dtype=np.float32)))
    log_w.requires_grad_(True)
    opt = torch.optim.Adam([log_w], lr=LR)
    fresh_vecs = table[idx] * mask[..., None]  # (E, J, dim)
    fresh_next = nexts[idx] * mask[..., None]
    b, c = slice(1, 1 + POSITIONS), slice(1 + POSITIONS, 1 + 2 * POSITIONS)
    for _ in range(steps):
        w = log_w.exp()
        folded = (w[0] * stored + (w[b, None] * fresh_vecs).sum(dim=1)
                  + (w[c, None] * fresh_next).sum(dim=1))  # fmt: skip
        logits = scale * F.normalize(folded, dim=-1) @ table_out.T
        loss = F.cross_entropy(logits, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return log_w.detach().exp().numpy().astype(np.float32)


def stored_vectors(
    model: TrainedModel,
    histories: Sequence[Sequence[Event]],
    items: tuple[Sequence[Hashable], np.ndarray],
    signs: Mapping[str, float],
    events: int = STORED_FOLD_EVENTS,
) -> np.ndarray:
    """The user vectors the worker stores for a model with a fold: the model over each
    history minus its newest ``events`` (STORED_FOLD_EVENTS) events, those folded in as
    rerank() would fold them (sign of the kind's weight x fold weight, newest first),
    normalised.

    Why not the model over the whole history: the fold adds what the model predicts
    follows each recent item (next_j), which the model's last position under-weights
    (see STORED_FOLD_EVENTS for the figures). At least one event stays in the prefix.
    Without a fold (an untrained or version-1 model): the model over the whole history.
    """
    if model.fold is None:
        return model.user_vectors(histories, items)
    ids, vecs = items
    row_of = {i: r for r, i in enumerate(ids)}
    prefixes: list[Sequence[Event]] = []
    newest: list[list[Event]] = []
    for h in histories:
        known = [e for e in h if e[0] in row_of]
        k = min(events, len(known) - 1)
        prefixes.append(known[:-k] if k > 0 else known)
        newest.append(known[-k:][::-1] if k > 0 else [])
    out = model.user_vectors(prefixes, items)
    folded = sorted({e[0] for f in newest for e in f}, key=row_of.__getitem__)
    if not folded:
        return out
    nexts = successor_vectors(model, folded, vecs[[row_of[i] for i in folded]])
    next_row = {i: r for r, i in enumerate(folded)}
    w = model.fold
    j_max = (len(w) - 1) // 2
    out = out * w[0]
    for n, events in enumerate(newest):
        for j, e in enumerate(events):
            jj = min(j, j_max - 1)
            s = signs.get(str(e[1]), 1.0)
            out[n] += s * (
                w[1 + jj] * vecs[row_of[e[0]]] + w[1 + j_max + jj] * nexts[next_row[e[0]]]
            )
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.where(norms > 1e-6, out / np.maximum(norms, 1e-6), 0.0).astype(np.float32)
