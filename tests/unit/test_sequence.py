"""Tests for recdb.sequence: the SASRec-style user encoder (CPU, tiny, no database)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from recdb.sequence import TrainConfig, TrainedModel, rank_metrics, train

N_ITEMS = 40
TEXT_DIM = 16
COLD = 1000  # an item id never seen in training
COLD_LIKE = 5  # the cold item's text is a near-copy of this item's text


def _text() -> tuple[list[int], np.ndarray]:
    rng = np.random.default_rng(1)
    mat = rng.normal(size=(N_ITEMS, TEXT_DIM)).astype(np.float32)
    return list(range(N_ITEMS)), mat / np.linalg.norm(mat, axis=1, keepdims=True)


def _walks() -> dict[int, list[tuple[int, str, float | None, float]]]:
    """Users walk the item cycle 0 -> 1 -> ... -> 39 -> 0 from random starts: next is obvious."""
    rng = np.random.default_rng(2)
    out = {}
    for user in range(48):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(8, 16))
        out[user] = [
            ((start + t) % N_ITEMS, "click" if t % 3 else "view", None, 1000.0 * user + 60 * t)
            for t in range(length)
        ]
    return out


# One thread: tiny ops gain nothing from a second one and stall when the cores are busy.
CFG = TrainConfig(
    epochs=30, max_len=12, hidden=32, layers=1, heads=2, dropout=0.1, lr=5e-3,
    batch_size=64, min_count=3, id_dropout=0.25, patience=8, seed=0, device="cpu", threads=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def data() -> tuple[dict, list[int], np.ndarray]:
    ids, text = _text()
    return _walks(), ids, text


@pytest.fixture(scope="module")
def trained(data) -> TrainedModel:
    walks, ids, text = data
    seqs = {u: w[:-1] for u, w in walks.items()}
    valid = {u: w[-1][0] for u, w in walks.items()}
    return train(seqs, valid, (ids, text), CFG, progress=False)


def _test_metrics(model: TrainedModel, walks, ids, text) -> dict[str, float]:
    vecs = model.item_vectors(ids, text)
    users = sorted(walks)
    uvecs = model.user_vectors([walks[u] for u in users], (ids, vecs))
    targets = np.array([(walks[u][-1][0] + 1) % N_ITEMS for u in users])
    exclude = [np.unique([e[0] for e in walks[u]]) for u in users]
    return rank_metrics(torch.from_numpy(uvecs), torch.from_numpy(vecs), exclude, targets, 10)


def test_learns_the_obvious_next_item(trained: TrainedModel, data) -> None:
    walks, ids, text = data
    assert trained.metrics["valid_hr@10"] == 1.0
    assert trained.metrics["best_epoch"] >= 1
    assert trained.metrics["seconds_per_epoch"] > 0
    m = _test_metrics(trained, walks, ids, text)
    assert m["hr@10"] == 1.0  # held-out next items: one step past the training data
    assert m["ndcg@10"] > 0.8


def test_vectors_are_unit_rows_in_the_output_space(trained: TrainedModel, data) -> None:
    walks, ids, text = data
    vecs = trained.item_vectors(ids, text)
    assert vecs.shape == (N_ITEMS, TEXT_DIM) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    users = trained.user_vectors([walks[0], walks[1], []], (ids, vecs))
    assert users.shape == (3, TEXT_DIM)
    np.testing.assert_allclose(np.linalg.norm(users[:2], axis=1), 1.0, atol=1e-5)
    assert not users[2].any()  # no history: zero row, the caller stores NULL
    # batching does not change a user's vector
    alone = trained.user_vectors([walks[1]], dict(zip(ids, vecs, strict=True)))
    np.testing.assert_allclose(alone[0], users[1], atol=1e-5)


def test_cold_item_gets_a_vector_near_its_text_neighbour(trained: TrainedModel, data) -> None:
    _, ids, text = data
    rng = np.random.default_rng(3)
    cold_text = text[COLD_LIKE] + 0.05 * rng.normal(size=TEXT_DIM).astype(np.float32)
    cold_text /= np.linalg.norm(cold_text)
    all_ids = [*ids, COLD]
    all_text = np.vstack([text, cold_text])
    vecs = trained.item_vectors(all_ids, all_text)
    assert trained.has_id([COLD_LIKE, COLD]).tolist() == [True, False]
    cold = vecs[-1]
    assert np.isfinite(cold).all()
    assert abs(float(np.linalg.norm(cold)) - 1.0) < 1e-5
    assert int(np.argmax(vecs[:-1] @ cold)) == COLD_LIKE
    # a user about to reach COLD_LIKE also finds the cold look-alike among the top items
    history = [((COLD_LIKE - 6 + t) % N_ITEMS, "click", None, 60.0 * t) for t in range(6)]
    user = trained.user_vectors([history], (all_ids, vecs))[0]
    scores = vecs @ user
    scores[[e[0] for e in history]] = -np.inf
    rank_of_cold = int((scores > scores[-1]).sum()) + 1
    assert rank_of_cold <= 5


def test_bytes_round_trip_is_identical(trained: TrainedModel, data) -> None:
    walks, ids, text = data
    blob = trained.to_bytes()
    again = TrainedModel.from_bytes(blob)
    assert again.to_bytes() == blob
    assert again.cfg == trained.cfg
    assert again.metrics["valid_hr@10"] == trained.metrics["valid_hr@10"]
    assert trained.fold is not None  # the fold operator travels in the blob
    np.testing.assert_array_equal(again.fold, trained.fold)
    np.testing.assert_array_equal(again.item_vectors(ids, text), trained.item_vectors(ids, text))
    vecs = trained.item_vectors(ids, text)
    hist = [walks[u] for u in sorted(walks)]
    np.testing.assert_array_equal(
        again.user_vectors(hist, (ids, vecs)), trained.user_vectors(hist, (ids, vecs))
    )
    with pytest.raises(ValueError, match="not a recdb"):
        TrainedModel.from_bytes(b"garbage")
    # a version-1 blob (before the fold existed) still loads, without a fold
    old_model = TrainedModel(trained.net, trained.cfg, trained.text_dim, trained.warm_ids,
                             trained.vocab.kinds)  # fmt: skip
    v1 = old_model.to_bytes().replace(b'"version":2', b'"version":1', 1)
    assert TrainedModel.from_bytes(v1).fold is None


def test_same_seed_same_bytes_and_metrics(trained: TrainedModel, data) -> None:
    walks, ids, text = data
    seqs = {u: w[:-1] for u, w in walks.items()}
    valid = {u: w[-1][0] for u, w in walks.items()}
    again = train(seqs, valid, (ids, text), CFG, progress=False)
    assert again.to_bytes() == trained.to_bytes()
    untimed = lambda m: {  # noqa: E731
        k: v for k, v in m.items() if k not in ("seconds_per_epoch", "fold_seconds")
    }
    assert untimed(again.metrics) == untimed(trained.metrics)  # incl. per-epoch loss/NDCG
    other = train(
        seqs, valid, (ids, text), dataclasses.replace(CFG, seed=1, epochs=2), progress=False
    )
    assert other.to_bytes() != trained.to_bytes()


def test_factorised_training_logits_equal_scaled_cosine(trained: TrainedModel) -> None:
    net = trained.net
    torch.manual_seed(0)
    h = torch.randn(5, CFG.hidden)
    items = torch.nn.functional.normalize(torch.randn(7, TEXT_DIM), dim=1)
    user = torch.nn.functional.normalize(net.out_proj(h), dim=1)
    with torch.no_grad():
        torch.testing.assert_close(net.cosine_logits(h, items), net.scale * user @ items.T)


@pytest.mark.parametrize("item_repr", ["text", "id"])
def test_text_only_and_id_only_variants(item_repr: str, data) -> None:
    walks, ids, text = data
    seqs = {u: w[:-1] for u, w in walks.items()}
    cfg = dataclasses.replace(
        CFG, epochs=3, item_repr=item_repr, dim=8, loss="sampled", negatives=8
    )
    model = train(seqs, {}, dict(zip(ids, text, strict=True)), cfg, progress=False)
    vecs = model.item_vectors(ids, text)
    assert vecs.shape == (N_ITEMS, 8)
    assert np.isfinite(vecs).all()
    assert model.metrics["epochs"] == 3
    assert model.metrics["best_epoch"] >= 1  # no validation: best training loss
    assert model.metrics["valid_ndcg@10"] is None
    assert TrainedModel.from_bytes(model.to_bytes()).to_bytes() == model.to_bytes()


def test_target_kinds_limits_what_is_predicted(data) -> None:
    walks, ids, text = data
    seqs = {u: w[:-1] for u, w in walks.items()}
    every = train(seqs, {}, (ids, text), dataclasses.replace(CFG, epochs=1), progress=False)
    clicks = dataclasses.replace(CFG, epochs=1, target_kinds=("click",))
    only = train(seqs, {}, (ids, text), clicks, progress=False)
    n_clicks = sum(e[1] == "click" for w in seqs.values() for e in w[1:])
    assert only.metrics["train_targets"] == n_clicks < every.metrics["train_targets"]
    assert TrainedModel.from_bytes(only.to_bytes()).cfg.target_kinds == ("click",)


def test_rejects_bad_input(data) -> None:
    _, ids, text = data
    with pytest.raises(ValueError, match="without text"):
        train({0: [(999, "click", None, 0.0)]}, {}, (ids, text), CFG, progress=False)
    with pytest.raises(ValueError, match="item_repr"):
        TrainConfig(item_repr="bag")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hidden"):
        TrainConfig(hidden=30, heads=4)


def test_learning_rate_schedule_warms_up_and_decays_to_zero() -> None:
    from recdb.sequence.train import _lr_schedule

    assert _lr_schedule(TrainConfig(), 10) is None  # constant lr: the optimiser's own
    cfg = TrainConfig(epochs=10, lr=1e-3, warmup_epochs=2, lr_schedule="cosine")
    lr = _lr_schedule(cfg, 5)
    assert lr is not None
    ramp = [lr(s) for s in range(10)]
    assert ramp == sorted(ramp) and ramp[0] == pytest.approx(1e-4)
    assert ramp[-1] == pytest.approx(1e-3)  # warmup ends at the configured lr
    decay = [lr(s) for s in range(10, 51)]
    assert decay == sorted(decay, reverse=True)
    assert decay[0] == pytest.approx(1e-3) and decay[-1] == pytest.approx(0.0, abs=1e-12)
    assert lr(30) == pytest.approx(0.5e-3)  # cosine: half way down at the middle
    linear = _lr_schedule(dataclasses.replace(cfg, lr_schedule="linear"), 5)
    assert linear is not None and linear(30) == pytest.approx(0.5e-3)
    assert linear(60) == 0.0  # past the last epoch: stays at 0
    warm_only = _lr_schedule(dataclasses.replace(cfg, lr_schedule="constant"), 5)
    assert warm_only is not None and warm_only(4) < 1e-3 == warm_only(49)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(warmup_epochs=-1)


def test_recent_windows_keep_each_users_newest_windows() -> None:
    from recdb.sequence.train import _windows

    every = _windows([25, 4], max_len=10, stride=10)
    assert [(w.user, w.start, w.stop) for w in every] == [
        (0, 14, 24), (0, 4, 14), (0, 0, 4), (1, 0, 3),
    ]  # fmt: skip
    newest = _windows([25, 4], max_len=10, stride=10, recent=1)
    assert [(w.user, w.start, w.stop) for w in newest] == [(0, 14, 24), (1, 0, 3)]


def test_scheduled_training_learns_and_records_the_lr(data) -> None:
    walks, ids, text = data
    seqs = {u: w[:-1] for u, w in walks.items()}
    valid = {u: w[-1][0] for u, w in walks.items()}
    cfg = dataclasses.replace(CFG, lr_schedule="cosine", warmup_epochs=2, epochs=20)
    model = train(seqs, valid, (ids, text), cfg, progress=False)
    assert model.metrics["valid_hr@10"] == 1.0
    lrs = [h["lr"] for h in model.metrics["history"]]
    assert lrs[0] < lrs[1] and lrs[2:] == sorted(lrs[2:], reverse=True)
    assert TrainedModel.from_bytes(model.to_bytes()).cfg == cfg


def test_selecting_on_the_folded_score_picks_that_epoch_and_trains_the_same(
    data, monkeypatch
) -> None:
    import sys

    # 48 users: one history cut each is too few for a fold
    monkeypatch.setattr(sys.modules["recdb.sequence.train"], "SELECT_FOLD_CUTS", 4)
    walks, ids, text = data
    seqs = {u: w[:-1] for u, w in walks.items()}
    valid = {u: w[-1][0] for u, w in walks.items()}
    plain_cfg = dataclasses.replace(CFG, epochs=6, patience=100)
    plain = train(seqs, valid, (ids, text), plain_cfg, progress=False)
    cfg = dataclasses.replace(plain_cfg, select="fold")
    model = train(seqs, valid, (ids, text), cfg, progress=False)
    hist = model.metrics["history"]
    # The fold is only scored: the epochs' weights (and so plain scores) are the same.
    assert [h["ndcg@10"] for h in hist] == [h["ndcg@10"] for h in plain.metrics["history"]]
    folded = [h["fold_ndcg@10"] for h in hist]
    assert model.metrics["best_epoch"] == 1 + int(np.argmax(folded))
    assert model.metrics["valid_fold_ndcg@10"] == max(folded)
    assert model.metrics["valid_ndcg@10"] == hist[model.metrics["best_epoch"] - 1]["ndcg@10"]
    assert model.fold is not None
    assert TrainedModel.from_bytes(model.to_bytes()).cfg.select == "fold"
    with pytest.raises(ValueError, match="select"):
        TrainConfig(select="test")  # type: ignore[arg-type]


def test_sampled_loss_runs_the_item_tower_on_what_a_step_reads(data, monkeypatch) -> None:
    """At 10^6 items the tower over the whole catalogue was most of a sampled step; it now
    sees the step's input rows, targets and negatives only (#13: training at scale)."""
    from recdb.sequence.model import SequenceNet

    walks, ids, text = data
    rng = np.random.default_rng(3)
    extra = rng.normal(size=(5000, TEXT_DIM)).astype(np.float32)  # never in a history
    big_ids = [*ids, *range(10_000, 15_000)]
    big_text = np.concatenate([text, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
    seen: list[int] = []
    original = SequenceNet.item_vectors

    def counting(self, text_in, id_idx):
        if torch.is_grad_enabled():  # training steps; validation ranks the catalogue
            seen.append(len(id_idx))
        return original(self, text_in, id_idx)

    monkeypatch.setattr(SequenceNet, "item_vectors", counting)
    seqs = {u: w[:-1] for u, w in walks.items()}
    valid = {u: w[-1][0] for u, w in walks.items()}
    cfg = dataclasses.replace(CFG, epochs=40, loss="sampled", negatives=64, patience=40)
    model = train(seqs, valid, (big_ids, big_text), cfg, progress=False)
    per_step_bound = cfg.batch_size * cfg.max_len + 2 * cfg.batch_size * cfg.max_len + 64
    assert seen and max(seen) < min(per_step_bound, len(big_ids))
    assert max(seen) < 1000  # 48 short walks over 40 items: inputs ∪ targets ∪ 64 negatives
    m = _test_metrics(model, walks, ids, text)
    assert model.metrics["valid_hr@10"] >= 0.9 and m["hr@10"] >= 0.9


def test_epoch_windows_and_valid_users_cap_the_work_of_an_epoch(data) -> None:
    """The caps that keep an epoch short at 10^7 events: a random subset of the windows per
    epoch, a fixed sample of the validation users."""
    walks, ids, text = data
    seqs = {u: w[:-1] for u, w in walks.items()}
    valid = {u: w[-1][0] for u, w in walks.items()}
    full = train(seqs, valid, (ids, text), dataclasses.replace(CFG, epochs=1), progress=False)
    cfg = dataclasses.replace(CFG, epochs=2, epoch_windows=10, valid_users=7)
    capped = train(seqs, valid, (ids, text), cfg, progress=False)
    assert full.metrics["windows_per_epoch"] == full.metrics["windows"] >= len(walks)
    assert full.metrics["valid_users"] == len(walks)
    assert capped.metrics["windows_per_epoch"] == 10 and capped.metrics["valid_users"] == 7
    assert 10 <= capped.metrics["train_targets"] <= 10 * CFG.max_len
    assert 10 * CFG.max_len < full.metrics["train_targets"]
    with pytest.raises(ValueError, match="epoch_windows"):
        TrainConfig(epoch_windows=0)


def test_the_fold_fit_reads_successors_of_the_folded_items_only(trained, data, monkeypatch):
    """fit_fold ran the model over every catalogue item (35 s at 10^6 items) where it uses
    the "what follows" vectors of the few items its history cuts fold in."""
    from recdb.sequence import fold

    walks, ids, text = data
    rng = np.random.default_rng(4)
    extra = rng.normal(size=(3000, TEXT_DIM)).astype(np.float32)
    big_ids = [*ids, *range(10_000, 13_000)]
    big_text = np.concatenate([text, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
    asked: list[int] = []
    original = fold.successor_vectors

    def counting(model, item_ids, vecs):
        asked.append(len(item_ids))
        return original(model, item_ids, vecs)

    monkeypatch.setattr(fold, "successor_vectors", counting)
    seqs = {u: w[:-1] for u, w in walks.items()}
    w = fold.fit_fold(trained, seqs, (big_ids, big_text), seed=0)
    assert w is not None and np.isfinite(w).all() and (w > 0).all()
    assert asked and max(asked) <= N_ITEMS  # the walks' items, not the 3,040-item catalogue


def test_future_targets_are_the_events_after_the_next_weighted() -> None:
    from recdb.sequence.train import _future_targets

    rows, wts = _future_targets(np.array([5, 6, 0, 7, 8]), 3, 0.5)
    # event t predicts t+1 (weight 1), t+2 and t+3 (0.5 each); 0 = not a target / past the end
    assert rows.tolist() == [[6, 0, 7], [0, 7, 8], [7, 8, 0], [8, 0, 0], [0, 0, 0]]
    assert wts.tolist() == [[1, 0, 0.5], [0, 0.5, 0.5], [1, 0.5, 0], [1, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_future_targets_at_zero_weight_train_as_next_item_only(loss: str, data) -> None:
    """The multi-target loss is the next-item cross entropy plus weighted later targets:
    with weight 0 the losses of every epoch are those of next-item training. (No ID
    dropout: the sampled step draws it per row read, and the later targets are read.)"""
    walks, ids, text = data
    seqs = {u: w[:-1] for u, w in walks.items()}
    base = dataclasses.replace(CFG, epochs=3, loss=loss, negatives=32, id_dropout=0.0)
    one = train(seqs, {}, (ids, text), base, progress=False)
    zero = dataclasses.replace(base, future_targets=4, future_weight=0.0)
    four = train(seqs, {}, (ids, text), zero, progress=False)
    a = [h["loss"] for h in one.metrics["history"]]
    b = [h["loss"] for h in four.metrics["history"]]
    assert a == pytest.approx(b, rel=1e-4)


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_future_targets_put_the_next_steps_of_the_walk_near_the_user(loss: str, data) -> None:
    """Trained on the 4 events after each position, the user vector's top 4 hold the
    walk's steps 2-4 too (next-item training, measured: 12 of 144 full, 5 sampled; with
    future targets 100 and 84), and still the next step."""
    walks, ids, text = data
    seqs = {u: w[:-1] for u, w in walks.items()}
    valid = {u: w[-1][0] for u, w in walks.items()}
    cfg = dataclasses.replace(CFG, epochs=40, patience=40, loss=loss, negatives=32,
                              future_targets=4, future_weight=1.0)  # fmt: skip
    model = train(seqs, valid, (ids, text), cfg, progress=False)
    assert TrainedModel.from_bytes(model.to_bytes()).cfg.future_targets == 4
    vecs = model.item_vectors(ids, text)
    users = sorted(walks)
    uvecs = model.user_vectors([walks[u] for u in users], (ids, vecs))
    in_top = np.zeros(4)
    for u, v in zip(users, uvecs, strict=True):
        top = set(np.argsort(-(vecs @ v))[:4].tolist())
        in_top += [(walks[u][-1][0] + s) % N_ITEMS in top for s in range(1, 5)]
    assert in_top[0] >= 0.8 * len(users)
    assert in_top[1:].sum() >= 0.5 * 3 * len(users)


def test_future_targets_reject_bad_settings() -> None:
    with pytest.raises(ValueError, match="future_targets"):
        TrainConfig(future_targets=0)
    with pytest.raises(ValueError, match="future_weight"):
        TrainConfig(future_weight=-1.0)
