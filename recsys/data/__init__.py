"""Sources of catalogs: the built-in generated world and adapters for real datasets.

Every adapter has the signature ``ingest_<format>(src, out, overwrite=False, progress=None)`` and returns
``(Catalog, IngestReport)``; :data:`ADAPTERS` names them so ``scripts/ingest.py`` can find them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

#: format -> "module:function"
ADAPTERS = {
    "folder": "recsys.data.folder:ingest_folder",
    "polyvore": "recsys.data.polyvore:ingest_polyvore",
    "fashioniq": "recsys.data.fashioniq:ingest_fashioniq",
    "amazon": "recsys.data.amazon:ingest_amazon",
    "fascode": "recsys.data.fascode:ingest_fascode",
}


@dataclass
class IngestReport:
    """What an ingest did: items written, and the files or records skipped with the reason."""

    items: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: What the user should check although nothing was skipped (e.g. a category whose slot was predicted).
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One sentence for the user: items written, how many were skipped with the first reason, and the notes."""
        text = f"{self.items} items written"
        if self.skipped:
            text += f", {len(self.skipped)} skipped (e.g. {self.skipped[0][0]}: {self.skipped[0][1]})"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text + "."


def get_adapter(fmt: str):
    """The ingest function for ``fmt`` (a key of :data:`ADAPTERS`), imported on first use.

    Raises
    ------
    ValueError
        With a clear sentence when ``fmt`` is unknown or its adapter module is not built in this version.
    ModuleNotFoundError
        When the adapter exists but a package it imports is not installed.
    """
    if fmt not in ADAPTERS:
        raise ValueError(f"Unknown format '{fmt}'; choose one of {', '.join(ADAPTERS)}.")
    module_name, function = ADAPTERS[fmt].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ValueError(f"The '{fmt}' adapter is not available in this version.") from None
        raise
    return getattr(module, function)
