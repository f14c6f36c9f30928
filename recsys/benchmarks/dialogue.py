"""Figures of the dialogue task (Stylist chat): training time, and the time from a sent message to the proposal.

* training time of the paper's model (``dialogue-mse``) and the contrastive one (``dialogue-infonce``) on the
  training dialogues of a generated world (demo; tiny when quick), with the time to encode the dialogues;
* response time of the chat: a user message -> encoded dialogue -> transferred slot vectors -> nearest items
  of every slot -> three candidate sets ranked with the set score (compatibility included), p50/p95 in ms.
  The page's own drawing is not part of it.

Item vectors are the world's artifacts when it has them, otherwise random unit vectors of the same shapes
(the timing does not depend on their values); the dialogue text is always encoded with the real text encoder.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from recsys.config import DEFAULT_TEXT_ENCODER
from recsys.utils import FIT_THREADS, torch_threads

MESSAGES = (
    "Hi! I need an outfit for a garden party.",
    "I like navy and white.",
    "For the bottom, a pleated skirt in a striped pattern please.",
    "Something warmer for the outer, maybe a wool coat.",
    "가을 축제에 입을 옷을 추천해 주세요.",
)


def _world(catalog_dir, quick: bool, seed: int, scratch: Path):
    from recsys.artifacts import ArtifactError, load_artifacts
    from recsys.catalog import Catalog
    from recsys.data.demo_world import build_demo_catalog

    if catalog_dir is None:
        catalog_dir = scratch / "world"
        build_demo_catalog(catalog_dir, preset="tiny" if quick else "demo", seed=seed)
    catalog = Catalog.load(catalog_dir)
    try:
        return catalog, load_artifacts(catalog), "artifacts"
    except (ArtifactError, FileNotFoundError):
        rng = np.random.default_rng(seed)

        def unit(d):
            v = rng.normal(size=(len(catalog), d)).astype(np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        shaped = SimpleNamespace(image=unit(1280), text_description=unit(384), text_encoder_spec=DEFAULT_TEXT_ENCODER)
        return catalog, shaped, "random unit vectors of the artifacts' shapes (no artifacts)"


def bench_dialogue_training(catalog_dir: str | os.PathLike | None = None, quick: bool = False, seed: int = 0) -> dict:
    """Seconds to encode the training dialogues and to fit each dialogue model."""
    from recsys.tasks.dialogue import data as task
    from recsys.tasks.dialogue.messages import dialogue_vectors

    with tempfile.TemporaryDirectory(prefix="bench-dialogue-") as scratch, torch_threads(FIT_THREADS):
        catalog, artifacts, source = _world(catalog_dir, quick, seed, Path(scratch))
        data = task.dialogue_data(catalog)
        encoder = task.text_encoder(artifacts.text_encoder_spec)
        started = time.perf_counter()
        vectors = dialogue_vectors(encoder, data.train_turns)
        encode_seconds = time.perf_counter() - started
        figures = {"world": catalog.name, "items": len(catalog), "train_dialogues": len(data.train_turns),
                   "item_vectors": source, "encode_dialogues_s": round(encode_seconds, 2)}
        for name in ("dialogue-mse", "dialogue-infonce"):
            model = task.fit_model(name, catalog, artifacts=artifacts, data=data, train_vectors=vectors, seed=seed,
                                   quick=quick)
            figures[f"{name}_fit_s"] = round(model.fit_seconds_, 2)
            figures[f"{name}_epochs"] = model.n_epochs
            figures[f"{name}_dialogues_per_s"] = round(model.n_epochs * len(data.train_turns) / model.fit_seconds_, 1)
    return figures


def bench_dialogue_response(catalog_dir: str | os.PathLike | None = None, quick: bool = False, seed: int = 0) -> dict:
    """Milliseconds from a sent message to the proposed set and the ranked candidates (p50 / p95)."""
    from recsys.store import ModelStore
    from recsys.tasks.dialogue import data as task
    from recsys.tasks.dialogue.service import Stylist

    with tempfile.TemporaryDirectory(prefix="bench-dialogue-") as scratch, torch_threads(FIT_THREADS):
        catalog, artifacts, source = _world(catalog_dir, quick, seed, Path(scratch))
        data = task.dialogue_data(catalog)
        model = task.fit_model("dialogue-infonce", catalog, artifacts=artifacts, data=data, seed=seed, quick=True)
        encoder = task.text_encoder(artifacts.text_encoder_spec)
        # What the chat uses: the store's saved compatibility model, or the fallback (never trained here).
        compatibility, compat_name = task.compatibility_scorer(catalog, artifacts, store=ModelStore(catalog, artifacts))
        stylist = Stylist(model, encoder, compatibility)
        stylist.respond([{"speaker": "US", "text": "warm-up"}])
        free, ranked = [], []
        repeats = 2 if quick else 6
        for _ in range(repeats):
            turns = []
            for message in MESSAGES:
                turns.append({"speaker": "US", "text": message})
                started = time.perf_counter()
                stylist.respond(turns)
                free.append(time.perf_counter() - started)
        for rows in data.eval_candidates[: 20 if quick else 100]:
            started = time.perf_counter()
            stylist.respond([{"speaker": "US", "text": MESSAGES[2]}], candidates=rows)
            ranked.append(time.perf_counter() - started)
    ms = lambda values, q: round(float(np.percentile(values, q)) * 1000, 1)  # noqa: E731
    return {"world": catalog.name, "items": len(catalog), "item_vectors": source, "compatibility": compat_name,
            "message_to_proposal_ms_p50": ms(free, 50), "message_to_proposal_ms_p95": ms(free, 95),
            "rank_eval_candidates_ms_p50": ms(ranked, 50) if ranked else None,
            "messages_timed": len(free)}


def run(quick: bool = False) -> dict:
    """Both figures on a freshly built world (tiny when ``quick``)."""
    return {"training": bench_dialogue_training(quick=quick), "response": bench_dialogue_response(quick=quick)}
