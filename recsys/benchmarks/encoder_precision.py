"""Encoder precision: fp32 against the default this machine chooses, and every other precision offered, measured in
one run (issue 29; :mod:`recsys.encoders.precision`).

``run(catalog_dir=..., quick=...)`` is what ``scripts/bench.py`` calls. For the default image encoder
(``effnet-lite0``) on catalog images and the default text encoder (``minilm``) on the catalog's distinct descriptions,
at each precision the encoder offers on this device: items per second (images preprocessed once, then encoded in the
precompute's batches of 32, so decoding is not timed; the best of two passes, the precisions interleaved), the
per-item cosine of its vectors to fp32's (min and mean) and whether it is faithful (min >= 0.995). ``upload_embed``
is an upload's embedding step (one photo, decoded and embedded) at fp32 and at the default, the median over the
photos. ``speedup`` figures are ratios to fp32 measured in the same run, comparable across machines; on a GPU the
same figures come for fp32, fp16 and bf16 there.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

IMAGE_SPEC, TEXT_SPEC = "effnet-lite0", "minilm"
IMAGES, QUICK_IMAGES = 256, 32
TEXTS, QUICK_TEXTS = 1024, 128
IMAGE_BATCH, TEXT_BATCH = 32, 128  # what recsys.precompute uses by default


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def compare(spec: str, device: str, encode_with, n: int, passes: int = 2) -> dict:
    """``{precision: {"items_per_s", "speedup", "cosine_min", "cosine_mean", "faithful"}, "default": name}`` for
    ``spec`` on ``device``: the fastest of ``passes`` timed passes each. ``encode_with(encoder, warm_up=False)``
    returns the ``(n, d)`` vectors of the benchmark's items (a few of them with ``warm_up``)."""
    from recsys.encoders import EncoderError, create_encoder
    from recsys.encoders.precision import FAITHFUL_COSINE

    default = create_encoder(spec, device)
    precisions = [p for p in ("fp32", "bf16", "int8", "fp16") if p in default.precisions]
    encoders = {}
    for precision in precisions:
        try:
            encoder = create_encoder(f"{spec}@{precision}", device)
        except EncoderError as exc:  # fp16 on a CPU, int8 on a GPU
            encoders[precision] = str(exc)
            continue
        if encoder.precision == precision:  # not a fallback to fp32
            encoders[precision] = encoder
    for encoder in encoders.values():  # warm-up: oneDNN builds its kernels on first use
        if not isinstance(encoder, str):
            encode_with(encoder, warm_up=True)
    figures: dict = {"default": default.precision}
    figures |= {precision: {"skipped": encoder} for precision, encoder in encoders.items() if isinstance(encoder, str)}
    vectors, best = {}, {}
    for _ in range(passes):  # the precisions interleaved, so a neighbour's burst of load hits each alike
        for precision, encoder in encoders.items():
            if isinstance(encoder, str):
                continue
            started = time.perf_counter()
            vectors[precision] = encode_with(encoder)
            best[precision] = min(best.get(precision, float("inf")), time.perf_counter() - started)
    for precision, seconds in best.items():
        figures[precision] = {"items_per_s": round(n / seconds, 1)}
    for precision in vectors:
        cosines = _cosines(vectors["fp32"], vectors[precision])
        figures[precision] |= {
            "speedup": round(figures[precision]["items_per_s"] / figures["fp32"]["items_per_s"], 2),
            "cosine_min": round(float(cosines.min()), 5), "cosine_mean": round(float(cosines.mean()), 5),
            "faithful": bool(cosines.min() >= FAITHFUL_COSINE),
        }
    return figures


def _upload_embed(spec: str, device: str, blobs: list[bytes]) -> dict:
    """Median seconds from a photo's bytes to its vector at fp32, at the default precision and, where it is neither
    and runs here, at bf16."""
    from recsys.encoders import create_encoder
    from recsys.imageio import load_upload

    figures = {}
    encoders = {"fp32": create_encoder(f"{spec}@fp32", device), "default": create_encoder(spec, device)}
    bf16 = create_encoder(f"{spec}@bf16", device) if "bf16" in encoders["default"].precisions else None
    if bf16 is not None and bf16.precision == "bf16" and encoders["default"].precision != "bf16":
        encoders["bf16"] = bf16
    for encoder in encoders.values():
        encoder.encode_images([load_upload(blobs[0])])
    for name, encoder in encoders.items():
        seconds = []
        for blob in blobs:
            started = time.perf_counter()
            encoder.encode_images([load_upload(blob)])
            seconds.append(time.perf_counter() - started)
        figures[f"{name}_median_s"] = round(float(np.median(seconds)), 4)
    figures["default"] = encoders["default"].precision
    figures["speedup"] = round(figures["fp32_median_s"] / figures["default_median_s"], 2)
    if "bf16_median_s" in figures:
        figures["bf16_speedup"] = round(figures["fp32_median_s"] / figures["bf16_median_s"], 2)
    return figures


def run(catalog_dir: str | Path, quick: bool = False) -> dict:
    """The figures of the module docstring for the catalog in ``catalog_dir``."""
    import torch

    from recsys.benchmarks.upload import _photos
    from recsys.catalog import Catalog
    from recsys.encoders.base import as_rgb, batched
    from recsys.encoders.precision import CPU_FLAGS, cpu_flags

    catalog = Catalog.load(catalog_dir)
    items = catalog.items
    step = max(1, len(items) // (QUICK_IMAGES if quick else IMAGES))
    images = [as_rgb(catalog.load_image(item)) for item in items["item_id"].iloc[::step][: QUICK_IMAGES if quick else IMAGES]]
    texts = list(dict.fromkeys(items["description"].fillna("").astype(str)))[: QUICK_TEXTS if quick else TEXTS]
    pixels_by_preprocess: dict = {}

    def encode_images(encoder, warm_up: bool = False) -> np.ndarray:
        key = id(type(encoder))
        if key not in pixels_by_preprocess:
            pixels_by_preprocess[key] = torch.stack([encoder.preprocess(image) for image in images])
        pixels = pixels_by_preprocess[key][:8] if warm_up else pixels_by_preprocess[key]
        return np.concatenate([encoder.encode_pixels(chunk) for chunk in batched(pixels, IMAGE_BATCH)])

    def encode_texts(encoder, warm_up: bool = False) -> np.ndarray:
        return encoder.encode_text(texts[:16] if warm_up else texts, batch_size=TEXT_BATCH)

    flags = cpu_flags()
    report = {
        "cpu": {"torch_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                **{f"{precision}_instructions": sorted(set(names) & flags) for precision, names in CPU_FLAGS.items()}},
        "images": len(images), "texts": len(texts),
        "image_cpu": compare(IMAGE_SPEC, "cpu", encode_images, len(images)),
        "text_cpu": compare(TEXT_SPEC, "cpu", encode_texts, len(texts)),
    }
    blobs, source = _photos(catalog, 8 if quick else 30)
    report["upload_embed_cpu"] = {"photos": len(blobs), "source": source, **_upload_embed(IMAGE_SPEC, "cpu", blobs)}
    if torch.cuda.is_available():
        report["image_cuda"] = compare(IMAGE_SPEC, "cuda", encode_images, len(images))
        report["text_cuda"] = compare(TEXT_SPEC, "cuda", encode_texts, len(texts))
        report["upload_embed_cuda"] = _upload_embed(IMAGE_SPEC, "cuda", blobs)
    return report
