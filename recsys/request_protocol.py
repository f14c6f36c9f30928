"""The request-following protocol: do the studio's pages do what people's own words ask?

``scripts/evaluate.py --catalog DIR --task requests --requests FILE.json --json OUT`` reads requests in the format
of ``../shared/requests/dev-requests.json`` (``"format": "requests v1 ..."``) and runs each through the service a
page calls, as the page calls it:

``search``
    free text (``text``) -> the Text-guided search page's free-text results (``SearchService.search_text``);
``captions``
    a reference (``reference``: attributes that pick the first catalog item having them all, or an ``item_id``) and
    captions applied in order -> the page's results among the reference's category, the reference left out
    (``SearchService.search``), for each composition model the page offers;
``stylist``
    chat messages in order -> the proposed coordi-set (``StylistService.reply``), for each trained dialogue model;
    ``want`` and ``not`` are per slot there.

``want``: every key must equal its value (a list: any of); ``not``: no key may equal its value. A request scores
hits in the top ``k`` / min(``k``, items that satisfy it) (for the Stylist: the share of its constrained slots
whose proposed item satisfies the slot's constraints, over the slots some item of the slot satisfies), averaged over
the requests some item satisfies (an item whose image could not be read satisfies none: no page offers it); the
others are counted (``unsatisfiable``). Each model is reported as the page runs it (understanding the words, DESIGN
section 14) and by the model alone (``<model> (model alone)``), with ``n``, the score, its standard error over
requests and the chance level (the expected score of a random ranking of the same gallery).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.metrics import standard_error
from recsys.reports import add_to_report
from recsys.store import ModelStore

logger = logging.getLogger(__name__)

KINDS = ("search", "captions", "stylist")
#: Results read per request (the score's k).
K = 10
#: Suffix of the rows that rank by the model alone.
ALONE = " (model alone)"
#: Requests of each row listed as missed in the report (the page's own rows).
MISSES_LISTED = 15


def load_requests(path: str | os.PathLike) -> dict:
    """The requests of a JSON file ``{"format": ..., "search": [...], "captions": [...], "stylist": [...]}``.

    Raises
    ------
    ValueError
        When the file cannot be read, is not such an object, or an entry lacks what its kind needs (one sentence
        naming the file and the entry).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"The requests file {path.name} cannot be read ({exc}).") from None
    if not isinstance(data, dict) or not any(isinstance(data.get(kind), list) for kind in KINDS):
        raise ValueError(f"The requests file {path.name} is not a requests object with a search, captions or "
                         f"stylist list.")
    needs = {"search": ("text", str), "captions": ("captions", list), "stylist": ("messages", list)}
    for kind in KINDS:
        for n, entry in enumerate(data.get(kind) or []):
            field_name, kind_of = needs[kind]
            if not isinstance(entry, dict) or not isinstance(entry.get(field_name), kind_of) \
                    or not isinstance(entry.get("want", {}), dict) or not isinstance(entry.get("not", {}), dict):
                raise ValueError(f"Entry {n + 1} of {kind} in {path.name} needs a {field_name!r} "
                                 f"({kind_of.__name__}) and dictionaries for 'want' and 'not'.")
            if kind == "captions" and not isinstance(entry.get("reference"), (dict, str)):
                raise ValueError(f"Entry {n + 1} of captions in {path.name} needs a 'reference' (attributes or an "
                                 f"item id).")
    return data


def satisfying(items: pd.DataFrame, want: dict, not_: dict) -> np.ndarray:
    """Bool ``(n,)``: items whose every ``want`` key equals its value (a list: any of) and no ``not`` key does. A key
    the catalog lacks is met by no item (wanted) or by every item (ruled out)."""
    ok = np.ones(len(items), dtype=bool)  # a fresh array: callers edit it
    for key, value in want.items():
        values = value if isinstance(value, list) else [value]
        ok &= items[key].astype(object).isin(values).to_numpy() if key in items.columns else False
    for key, value in not_.items():
        values = value if isinstance(value, list) else [value]
        if key in items.columns:
            ok &= ~items[key].astype(object).isin(values).to_numpy()
    return ok


def reference_row(catalog: Catalog, reference, offered: np.ndarray | None = None) -> int | None:
    """The row of a captions request's reference: its item id, or the first item having all its attributes; None
    when there is none, or when the item is not ``offered`` (bool ``(n,)``, :func:`offered`)."""
    items = catalog.items
    usable = np.ones(len(items), dtype=bool) if offered is None else offered
    if isinstance(reference, str):
        row = catalog.id_to_index.get(reference)
        return row if row is None or usable[row] else None
    rows = np.flatnonzero(satisfying(items, reference, {}) & usable)
    return int(rows[0]) if len(rows) else None


def offered(catalog: Catalog, service) -> np.ndarray:
    """Bool ``(n,)``: the items a page can offer, i.e. all but the service's ``unavailable_rows()`` (an image that
    could not be read, DESIGN section 6); a request only they would satisfy is unsatisfiable."""
    usable = np.ones(len(catalog), dtype=bool)
    usable[service.unavailable_rows()] = False
    return usable


def _figures(scores: list[float], chances: list[float], unsatisfiable: int, misses: list[str]) -> dict:
    out = {"n": len(scores), "score": float(np.mean(scores)) if scores else None,
           "score_se": standard_error(scores) if len(scores) > 1 else None,
           "chance": float(np.mean(chances)) if chances else None, "unsatisfiable": unsatisfiable}
    if out["score_se"] is not None and not np.isfinite(out["score_se"]):
        out["score_se"] = None
    if misses:
        out["missed"] = misses[:MISSES_LISTED]
    return out


def _hits(ids: list[str], ok: np.ndarray, lookup: dict) -> int:
    return int(sum(ok[lookup[i]] for i in ids[:K]))


def _evaluate_search(catalog: Catalog, search, entries: list[dict]) -> dict:
    items, lookup = catalog.items, catalog.id_to_index
    usable = offered(catalog, search)
    out = {}
    for understood in (True, False):
        scores, chances, misses, unsatisfiable = [], [], [], 0
        for entry in entries:
            ok = satisfying(items, entry.get("want", {}), entry.get("not", {})) & usable
            if not ok.any():
                unsatisfiable += 1
                continue
            result = search.search_text(entry["text"], k=K, understood=understood)
            best = min(K, int(ok.sum()))
            scores.append(_hits(result.item_ids, ok, lookup) / best)
            chances.append(min(1.0, K * ok.mean() / best))
            if scores[-1] < 1:
                misses.append(entry["text"])
        out["text-only" + ("" if understood else ALONE)] = _figures(scores, chances, unsatisfiable, misses)
    return out


def _evaluate_captions(catalog: Catalog, search, entries: list[dict]) -> dict:
    items, lookup = catalog.items, catalog.id_to_index
    ids = items["item_id"].to_numpy()
    usable = offered(catalog, search)
    out = {}
    for name in search.composition_choices():
        for understood in (True, False):
            scores, chances, misses, unsatisfiable = [], [], [], 0
            for entry in entries:
                row = reference_row(catalog, entry["reference"], usable)
                ok = satisfying(items, entry.get("want", {}), entry.get("not", {})) & usable
                if row is None or not np.delete(ok, row).any():
                    unsatisfiable += 1
                    continue
                ok[row] = False
                category = str(items["category"].iat[row])
                result = search.search(search.reference_features(ids[row]), entry["captions"], model=name, k=K,
                                       category=category, exclude=[ids[row]], understood=understood,
                                       reference_attributes=search.reference_attributes(ids[row]))
                best = min(K, int(ok.sum()))
                gallery = np.array(items["category"] == category, dtype=bool)
                gallery[row] = False
                scores.append(_hits(result.item_ids, ok, lookup) / best)
                chances.append(min(1.0, K * (ok & gallery).sum() / max(1, gallery.sum()) / best))
                if scores[-1] < 1:
                    misses.append(" / ".join(entry["captions"]))
            out[name + ("" if understood else ALONE)] = _figures(scores, chances, unsatisfiable, misses)
    return out


def _evaluate_stylist(catalog: Catalog, chat, entries: list[dict]) -> dict:
    from recsys.models.dialogue import CATALOG_TO_FASCODE

    items = catalog.items
    fascode_slot = items["slot"].map(CATALOG_TO_FASCODE).to_numpy() if "slot" in items.columns else None
    usable = offered(catalog, chat)
    out, skipped = {}, {}
    for name in chat.models():
        status = chat.status(name)
        if not status.ready:
            skipped[name] = status.reason or "not trained"
            continue
        for understood in (True, False):
            scores, chances, misses, unsatisfiable = [], [], [], 0
            for entry in entries:
                turns: list = []
                reply = None
                for message in entry["messages"]:
                    reply = chat.reply(message, turns, model=name, understood=understood)
                    turns = reply.turns
                hits, chance = [], []
                for slot, want in entry.get("want", {}).items():
                    in_slot = fascode_slot == slot if fascode_slot is not None else np.ones(len(items), dtype=bool)
                    ok = satisfying(items, want, entry.get("not", {}).get(slot, {})) & in_slot & usable
                    if not ok.any():
                        continue
                    proposed = reply.proposal.coordi.get(slot, -1) if reply and reply.proposal else -1
                    hits.append(float(proposed >= 0 and ok[proposed]))
                    chance.append(ok.sum() / max(1, in_slot.sum()))
                if not hits:
                    unsatisfiable += 1
                    continue
                scores.append(float(np.mean(hits)))
                chances.append(float(np.mean(chance)))
                if scores[-1] < 1:
                    misses.append(" / ".join(entry["messages"]))
            out[name + ("" if understood else ALONE)] = _figures(scores, chances, unsatisfiable, misses)
    if skipped:
        out["_skipped"] = skipped
    return out


def evaluate_requests(catalog: Catalog, requests: dict, *, search=None, chat=None) -> dict:
    """Run ``requests`` (:func:`load_requests`) through the pages' services; returns ``{kind: {row: figures}}``
    (see the module docstring), a kind the catalog cannot serve under ``_skipped`` with its sentence.

    ``search`` and ``chat`` (a :class:`~recsys.tasks.composed.service.SearchService` and a
    :class:`~recsys.tasks.dialogue.service.StylistService`) are built from the catalog's artifacts and model store
    when not given.

    Raises
    ------
    recsys.artifacts.ArtifactError
        When the catalog has no usable precomputed embeddings.
    """
    artifacts = load_artifacts(catalog) if search is None or chat is None else None
    store = ModelStore(catalog, artifacts) if artifacts is not None else None
    report: dict = {}
    skipped: dict = {}
    if requests.get("search") or requests.get("captions"):
        try:
            if search is None:
                from recsys.tasks.composed.service import SearchService

                search = SearchService(catalog, artifacts, store).load()
        except (ValueError, RuntimeError) as exc:  # no joint space, no composition model: one sentence
            skipped["search"] = skipped["captions"] = str(exc)
        for kind, run in (("search", _evaluate_search), ("captions", _evaluate_captions)):
            if requests.get(kind) and kind not in skipped:
                try:
                    report[kind] = run(catalog, search, requests[kind])
                except (ValueError, RuntimeError) as exc:
                    skipped[kind] = str(exc)
    if requests.get("stylist"):
        try:
            if chat is None:
                from recsys.tasks.dialogue.service import StylistService

                chat = StylistService(catalog, artifacts, store)
            report["stylist"] = _evaluate_stylist(catalog, chat, requests["stylist"])
        except ValueError as exc:
            skipped["stylist"] = str(exc)
    if skipped:
        report["_skipped"] = skipped
    return report


def add_request_figures(catalog: Catalog, figures: dict, *, source) -> Path:
    """Add the protocol's ``figures`` on the requests file ``source`` to the catalog's report (under ``_requests``,
    one entry per file, with when), creating the report when it has none; returns its path.

    Raises
    ------
    OSError
        When the report cannot be written.
    ValueError
        When the existing report cannot be read.
    """
    return add_to_report(catalog.root, "_requests", source, figures, replace_damaged=False)
