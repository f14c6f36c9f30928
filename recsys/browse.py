"""The browsing helpers behind the catalog grid and the sidebar: filters, pages of rows, and what the artifacts'
manifest says (plain pandas; the UI layer, :mod:`recsys.ui`, draws them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pandas as pd

from recsys.text import CleanText, clean_text, normalize_text

#: Columns the browse page offers as filters, in the order shown; only those a catalog has are offered.
FILTER_COLUMNS = ("category", "color", "pattern", "style")
#: The longest title search read (characters); no title is near this long.
MAX_SEARCH_CHARS = 200


def filter_columns(items: pd.DataFrame) -> list[str]:
    """The columns of :data:`FILTER_COLUMNS` that ``items`` has (a folder of photos has only ``category``)."""
    return [c for c in FILTER_COLUMNS if c in items.columns and items[c].notna().any()]


def filter_options(items: pd.DataFrame, column: str) -> list[str]:
    """The distinct non-empty values of ``items[column]`` as sorted strings (the choices of a filter widget)."""
    return sorted(str(v) for v in items[column].dropna().unique())


def title_search(text) -> CleanText:
    """What a title search box holds, cleaned (:func:`recsys.text.clean_text`, cut at :data:`MAX_SEARCH_CHARS`).

    ``problem`` is set when the box holds only spaces or invisible characters (every item then matches), ``note``
    when it was cut; show them with :attr:`recsys.text.CleanText.messages`. An empty box is no search, not a
    problem: it is how every page opens. Never raises.
    """
    if text is None or text == "":
        return CleanText("")
    return clean_text(text, what="title search", max_chars=MAX_SEARCH_CHARS,
                      empty="The title search holds only spaces or invisible characters, so every item is shown.")


def filter_items(items: pd.DataFrame, selections: Mapping[str, Sequence[str]], search: str = "") -> pd.DataFrame:
    """Rows of ``items`` holding one of the selected values in each column and every word of ``search`` in the title.

    An empty selection leaves its column unfiltered. The search is cleaned as :func:`title_search` cleans it and
    matched without case (``str.casefold``); titles are read in the same canonical form, so composed and decomposed
    spellings (NFC, NFD) and pasted zero-width characters match alike.
    """
    keep = pd.Series(True, index=items.index)
    for column, chosen in selections.items():
        if chosen:
            keep &= items[column].isin(list(chosen))
    words = title_search(search).text.casefold().split()
    if words:
        titles = items["title"].map(lambda t: normalize_text("" if t is None or t != t else t).casefold())
        for word in dict.fromkeys(words):
            keep &= titles.str.contains(word, regex=False)
    return items[keep]


def page_count(total: int, page_size: int) -> int:
    """Number of pages needed for ``total`` rows; at least one, so an empty result still has a page 1."""
    return max(1, -(-total // page_size))


def page_of(items: pd.DataFrame, page_number: int, page_size: int) -> pd.DataFrame:
    """Rows of page ``page_number`` (1-based) of ``items``."""
    start = (page_number - 1) * page_size
    return items.iloc[start : start + page_size]


@dataclass(frozen=True)
class ArtifactSummary:
    """What the sidebar says about ``<catalog>/artifacts/manifest.json``."""

    present: bool
    encoders: dict[str, str]
    item_count: int | None = None
    created: str | None = None
    problem: str | None = None

    @classmethod
    def from_manifest(cls, manifest, name: str = "manifest.json") -> "ArtifactSummary":
        """The summary of a parsed manifest (``problem`` set when it is not a JSON object)."""
        if not isinstance(manifest, dict):
            return cls(present=True, encoders={}, problem=f"{name} is not a JSON object.")
        count = manifest.get("item_count")
        return cls(present=True, encoders=encoder_specs(manifest), item_count=count if isinstance(count, int) else None,
                   created=str(manifest["created_at"]) if manifest.get("created_at") else None)


def encoder_specs(manifest: Mapping) -> dict[str, str]:
    """``{"image encoder": spec, ...}`` from the manifest's ``*_encoder`` keys or its ``encoders`` mapping."""
    specs: dict[str, str] = {}
    nested = manifest.get("encoders")
    if isinstance(nested, Mapping):
        for role, value in nested.items():
            spec = value.get("spec") if isinstance(value, Mapping) else value
            if spec:
                specs[f"{role} encoder"] = str(spec)
    for key, value in manifest.items():
        if key.endswith("_encoder") and isinstance(value, (str, Mapping)):
            spec = value.get("spec") if isinstance(value, Mapping) else value
            spec = f"{spec}@{value['precision']}" if spec and isinstance(value, Mapping) and value.get("precision") else spec
            if spec:
                specs[key.replace("_", " ")] = str(spec)
    return specs
