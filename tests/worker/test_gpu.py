"""The CUDA path (fp16 encoding, user encoding on the device). Runs only where a GPU is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recdb.encoders import TextEncoder
from recdb.encoders.users import MeanUserEncoder
from recdb.worker import Worker, WorkerConfig
from tests.support.builders import add_events, add_items
from tests.support.tiny_model import tiny_text_encoder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TEXTS = ["red running shoes", "a thrilling heist movie", "", "x" * 5000, "chocolate cake"]


def _cuda_copy(cpu: TextEncoder) -> TextEncoder:
    import copy

    return TextEncoder.from_module(
        copy.deepcopy(cpu.model),
        cpu.tokenizer,
        device="cuda",
        max_length=cpu.max_length,
        batch_size=cpu.batch_size,
    )


def test_fp16_cuda_encoding_matches_cpu():
    cpu = tiny_text_encoder()
    gpu = _cuda_copy(cpu)
    assert next(gpu.model.parameters()).dtype == torch.float16
    a, b = cpu.encode(TEXTS), gpu.encode(TEXTS)
    assert b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-3)
    assert (np.sum(a * b, axis=1) > 0.999).all()


def test_mean_user_encoder_on_cuda_matches_cpu():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, 32)).astype(np.float32)
    users = rng.integers(0, 10, 400)
    rows = rng.integers(0, 50, 400)
    weights = rng.normal(size=400).astype(np.float32)
    a, na = MeanUserEncoder("cpu").encode(10, users, rows, weights, vecs)
    b, nb = MeanUserEncoder("cuda").encode(10, users, rows, weights, vecs)
    assert np.allclose(a, b, atol=1e-4) and np.allclose(na, nb, rtol=1e-4)


def test_worker_on_cuda_end_to_end(conn, db_url):
    add_items(conn, [{"item_id": i, "title": t} for i, t in enumerate(TEXTS)])
    add_events(conn, 1, [0, 1], "click")
    cpu = tiny_text_encoder()
    stats = Worker(
        WorkerConfig(database_url=db_url, device="cuda"), text_encoder=_cuda_copy(cpu)
    ).run(once=True)
    assert (stats.items_encoded, stats.users_encoded, stats.errors) == (5, 1, 0)
    got = np.stack(
        [r[0] for r in conn.execute("SELECT embedding FROM recdb.items ORDER BY item_id")]
    )
    assert (np.sum(got * cpu.encode(TEXTS), axis=1) > 0.999).all()
    assert (
        conn.execute("SELECT count(*) FROM recdb.users WHERE embedding IS NOT NULL").fetchone()[0]
        == 1
    )


def test_sequence_model_trains_in_mixed_precision_and_serves_on_cuda(conn, db_url):
    """`recdb train --device cuda` (autocast) then a CUDA worker serving the model."""
    import dataclasses

    from recdb.sequence.job import train_and_register
    from tests.worker.test_sequence_serving import CFG, N_ITEMS, load

    cpu = tiny_text_encoder()
    w = load(conn, db_url, cpu)
    result = train_and_register(db_url, dataclasses.replace(CFG, device="cuda"), progress=False)
    assert result.activated and result.device.startswith("cuda")
    assert result.valid_ndcg is not None and result.valid_ndcg > 0.5
    stats = Worker(
        WorkerConfig(database_url=db_url, device="cuda"), text_encoder=_cuda_copy(cpu)
    ).run(once=True)
    assert stats.errors == 0 and stats.items_encoded == N_ITEMS
    assert conn.execute("SELECT count(DISTINCT encoder) FROM recdb.users").fetchone()[0] == 1
    hits = sum(
        (items[-1] + 1) % N_ITEMS
        in [r[0] for r in conn.execute("SELECT item_id FROM rerank(%s, 10)", (u,))]
        for u, items in w.items()
    )
    assert hits >= 0.9 * len(w)
