"""A request in one's own words to its answer: a free-text search, a captioned search and a Stylist reply, each
with its understanding (:mod:`recsys.understand`), timed warm.

``run(catalog_dir=..., quick=...)`` is what ``scripts/bench.py`` calls. It trains, on quick schedules, the page
models the catalog lacks (the timings do not depend on the schedule), warms each service with one request, then
times every request of the development requests (``tests/fixtures/requests/dev-requests.json``) as the pages send
them: ``SearchService.search_text``, ``SearchService.search`` on the reference, and ``StylistService.reply`` turn
by turn. Reported per kind: the median and p95 seconds of one request, and the seconds of understanding alone
(the vocabulary built once per catalog, ``vocabulary_s``). The issue's budget is 0.3 s warm on 2 cores.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from recsys.config import PROJECT_ROOT

REQUESTS = PROJECT_ROOT / "tests" / "fixtures" / "requests" / "dev-requests.json"
QUICK_REQUESTS = 10


def _figures(seconds: list[float]) -> dict:
    return {"n": len(seconds), "median_s": round(float(np.median(seconds)), 4),
            "p95_s": round(float(np.percentile(seconds, 95)), 4)} if seconds else {"n": 0}


def run(catalog_dir: str | Path, quick: bool = False) -> dict:
    """The figures of the module docstring (seconds) for the catalog in ``catalog_dir`` (precomputed and its page
    models trained here when missing)."""
    from recsys.artifacts import load_artifacts, precompute, read_manifest
    from recsys.catalog import Catalog
    from recsys.request_protocol import load_requests, reference_row
    from recsys.store import ModelStore
    from recsys.tasks.composed.service import SearchService
    from recsys.tasks.dialogue.service import DEFAULT_MODEL, StylistService
    from recsys.understand import Vocabulary

    catalog = Catalog.load(catalog_dir)
    if read_manifest(Path(catalog_dir) / "artifacts") is None:
        precompute(catalog, progress=False)
    artifacts = load_artifacts(catalog)
    store = ModelStore(catalog, artifacts)
    started = time.perf_counter()
    Vocabulary.from_items(catalog.items)
    figures: dict = {"vocabulary_s": round(time.perf_counter() - started, 3)}
    requests = load_requests(REQUESTS)
    limit = QUICK_REQUESTS if quick else None
    search = SearchService(catalog, artifacts, store)
    if search.missing():
        search.train(quick=True)
    search.load()
    search.search_text("warm up", k=12)
    ids = catalog.items["item_id"].to_numpy()
    times: dict[str, list[float]] = {"search": [], "captions": [], "stylist": []}
    for entry in requests["search"][:limit]:
        t0 = time.perf_counter()
        search.search_text(entry["text"], k=12)
        times["search"].append(time.perf_counter() - t0)
    for entry in requests["captions"][:limit]:
        row = reference_row(catalog, entry["reference"])
        if row is None:
            continue
        t0 = time.perf_counter()
        search.search(search.reference_features(ids[row]), entry["captions"], k=12,
                      category=str(catalog.items["category"].iat[row]), exclude=[ids[row]],
                      reference_attributes=search.reference_attributes(ids[row]))
        times["captions"].append(time.perf_counter() - t0)
    chat = StylistService(catalog, artifacts, store)
    if not chat.status(DEFAULT_MODEL).ready:
        store.fit("dialogue", DEFAULT_MODEL, quick=True)
    chat.reply("warm up", [])
    for entry in requests["stylist"][:limit]:
        turns: list = []
        for message in entry["messages"]:
            t0 = time.perf_counter()
            turns = chat.reply(message, turns).turns
            times["stylist"].append(time.perf_counter() - t0)
    figures |= {kind: _figures(seconds) for kind, seconds in times.items()}
    return figures
