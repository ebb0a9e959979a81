"""Text and user encoders: everything that turns items and histories into vectors."""

from recdb.encoders.protocol import BatchReader, UserBatch, UserEncoder
from recdb.encoders.sequence import SequenceUserEncoder
from recdb.encoders.text import (
    ModelNotFoundError,
    TextEncoder,
    item_text,
    resolve_device,
    resolve_model_path,
)
from recdb.encoders.users import (
    USER_ENCODER_NAMES,
    MeanUserEncoder,
    TextProfileUserEncoder,
    get_user_encoder,
    profile_text,
)

__all__ = [
    "USER_ENCODER_NAMES",
    "BatchReader",
    "MeanUserEncoder",
    "ModelNotFoundError",
    "SequenceUserEncoder",
    "TextEncoder",
    "TextProfileUserEncoder",
    "UserBatch",
    "UserEncoder",
    "get_user_encoder",
    "item_text",
    "profile_text",
    "resolve_device",
    "resolve_model_path",
]
