"""Image and text encoders behind one registry keyed by spec strings (DESIGN section 5).

>>> from recsys.encoders import create_encoder
>>> encoder = create_encoder("effnet-lite0")           # doctest: +SKIP
>>> vectors = encoder.encode_images([image])           # doctest: +SKIP   (1, 1280) float32, unit rows

Every encoder returns L2-normalized float32 rows and carries its own ``preprocess``; problems (unknown
spec, missing weights) raise :class:`EncoderError` with one sentence naming the spec and the remedy.
"""

from recsys.encoders.base import Encoder, EncoderError, l2_normalize, resolve_device
from recsys.encoders.registry import check_spec, create_encoder, list_encoders, register_encoder, spec_name

__all__ = [
    "Encoder",
    "EncoderError",
    "check_spec",
    "create_encoder",
    "l2_normalize",
    "list_encoders",
    "register_encoder",
    "resolve_device",
    "spec_name",
]
