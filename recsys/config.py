"""Settings of the studio, read from environment variables with sensible defaults.

Every path the library uses comes from here (or from an explicit argument), never from a literal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The default image and text encoder specs (DESIGN section 5); both run offline from PyPI packages.
DEFAULT_IMAGE_ENCODER = "effnet-lite0"
DEFAULT_TEXT_ENCODER = "minilm"

# A missing hub model would otherwise retry for ~45 s before failing: nothing is ever downloaded at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True)
class Settings:
    """Where the catalog lives and which encoders and device to use.

    Attributes
    ----------
    data_dir : Path
        Folder for generated catalogs (``RECSYS_DATA_DIR``, default ``<project>/data``).
    catalog_dir : Path
        The catalog the app shows (``RECSYS_CATALOG``, default ``<data_dir>/demo``, the built-in world).
    catalog_is_builtin : bool
        True when no ``RECSYS_CATALOG`` was given, so the app may build the demo world on first start.
    image_encoder : str or None
        The image encoder spec the set-up embeds a catalog with (``RECSYS_IMAGE_ENCODER``); a catalog embedded by
        another is embedded again. None, the default: the catalog's embeddings stay whatever made them, and a catalog
        without embeddings gets ``effnet-lite0``'s.
    text_encoder : str or None
        The text encoder spec (``RECSYS_TEXT_ENCODER``); None, the default, is the image encoder's own text side
        when it is a joint image-text encoder (an open_clip model), else ``minilm``.
    device : str
        ``auto``, ``cpu`` or ``cuda`` (``RECSYS_DEVICE``).
    precision : str or None
        The precision every encoder runs at (``RECSYS_PRECISION``: fp32, bf16, int8 or fp16; checked when an encoder
        is created); None, the default: each encoder's fastest faithful one on this machine
        (:mod:`recsys.encoders.precision`).
    index_backend : str
        ``faiss`` (in-process, the default) or ``milvus`` (a Milvus database) for every ``VectorIndex``
        (``RECSYS_INDEX_BACKEND``).
    milvus_uri : str
        The Milvus database (``RECSYS_MILVUS_URI``): a local file runs the embedded Milvus Lite (default
        ``<catalog_dir>/artifacts/index.milvus.db``), ``http://host:19530`` a Milvus server.
    warm_up : bool
        Load the slowest pages' models and encoders in the background when the app first serves a catalog
        (``RECSYS_WARM_UP``, default on; ``0`` turns it off, as the tests do).
    photo_head : Path or None
        The garment recognizer uploads are read with (``RECSYS_PHOTO_HEAD``, a path without or with its
        ``.safetensors`` suffix); None, the default: the one the studio ships in ``assets/models/garment-head``.
    """

    data_dir: Path
    catalog_dir: Path
    catalog_is_builtin: bool
    image_encoder: str | None = None
    text_encoder: str | None = None
    device: str = "auto"
    precision: str | None = None
    index_backend: str = "faiss"
    milvus_uri: str = ""
    warm_up: bool = True
    photo_head: Path | None = None

    @property
    def artifacts_dir(self) -> Path:
        """The catalog's artifacts folder (embedding shards, indexes, models): ``<catalog_dir>/artifacts``."""
        return self.catalog_dir / "artifacts"


def get_settings(environ: dict | None = None) -> Settings:
    """Read the settings from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("RECSYS_DATA_DIR") or PROJECT_ROOT / "data").expanduser()
    catalog = env.get("RECSYS_CATALOG")
    return Settings(
        data_dir=data_dir,
        catalog_dir=Path(catalog).expanduser() if catalog else data_dir / "demo",
        catalog_is_builtin=not catalog,
        image_encoder=env.get("RECSYS_IMAGE_ENCODER") or None,
        text_encoder=env.get("RECSYS_TEXT_ENCODER") or None,
        device=env.get("RECSYS_DEVICE") or "auto",
        precision=(env.get("RECSYS_PRECISION") or "").strip().lower() or None,
        index_backend=(env.get("RECSYS_INDEX_BACKEND") or "faiss").strip().lower(),
        milvus_uri=env.get("RECSYS_MILVUS_URI")
        or str((Path(catalog).expanduser() if catalog else data_dir / "demo") / "artifacts" / "index.milvus.db"),
        warm_up=(env.get("RECSYS_WARM_UP") or "1").strip().lower() not in ("0", "false", "no", "off"),
        photo_head=Path(env["RECSYS_PHOTO_HEAD"]).expanduser() if env.get("RECSYS_PHOTO_HEAD") else None,
    )
