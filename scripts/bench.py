#!/usr/bin/env python
"""The studio's performance figures (DESIGN section 9).

    python scripts/bench.py [--quick] [--only NAME[,NAME...]] [--json OUT]

Times the generation of the built-in world, then runs every benchmark module found in ``recsys/benchmarks/``:
each module's ``run`` function is called with whichever of these keyword arguments it accepts -- ``quick``
(bool), ``catalog_dir`` (a freshly built world), ``work_dir`` (a scratch folder), ``seed`` -- and returns a
JSON-ready dict of figures. Adding a benchmark is adding such a module.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import os
import pkgutil
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger("bench")

BENCHMARK_PACKAGE = "recsys.benchmarks"
SEED = 0


def folder_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def bench_build_demo_world(preset: str, out_dir: Path, seed: int = SEED) -> dict:
    """Wall time of ``build_demo_catalog`` for one preset (tables, rendering and the atomic write)."""
    from recsys.data.demo_world import build_demo_catalog

    started = time.perf_counter()
    catalog = build_demo_catalog(out_dir, preset=preset, seed=seed)
    seconds = time.perf_counter() - started
    counts = catalog.meta.get("counts", {})
    return {
        "preset": preset,
        "seconds": round(seconds, 2),
        "items": len(catalog),
        "items_per_s": round(len(catalog) / seconds, 1),
        "interactions": counts.get("interactions"),
        "users": counts.get("users"),
        "size_mb": round(folder_size_mb(out_dir), 1),
    }


def bench_precompute(catalog_dir: Path) -> dict:
    """End-to-end ``precompute`` of a catalog with the default encoders on this machine (decode + encode + write)."""
    from recsys.artifacts import precompute
    from recsys.catalog import Catalog

    catalog = Catalog.load(catalog_dir)
    started = time.perf_counter()
    manifest = precompute(catalog, device="auto", progress=False)
    seconds = time.perf_counter() - started
    return {
        "items": len(catalog),
        "seconds": round(seconds, 1),
        "items_per_s": round(len(catalog) / seconds, 1),
        "artifacts_mb": round(folder_size_mb(catalog_dir / "artifacts"), 1),
        "timings": manifest.get("timings"),
    }


def bench_similar_click(catalog_dir: Path | None = None, quick: bool = False) -> dict:
    """Median and worst time from clicking "Find similar" on a result to the re-rendered page."""
    if catalog_dir is None or not (Path(catalog_dir) / "artifacts" / "manifest.json").is_file():
        return {"skipped": "needs a catalog with precomputed artifacts"}
    from streamlit.testing.v1 import AppTest

    from recsys.catalog import Catalog
    from recsys.config import PROJECT_ROOT

    previous = os.environ.get("RECSYS_CATALOG")
    os.environ["RECSYS_CATALOG"] = str(catalog_dir)
    try:
        app = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=300)
        started = time.perf_counter()
        app.run()
        app.switch_page("pages/similar.py").run()
        first = time.perf_counter() - started
        if app.exception:
            return {"error": app.exception[0].value}
        items = Catalog.load(catalog_dir, check_images=False).items["item_id"]
        timings = []
        for _ in range(3 if quick else 10):
            pivots = [b for b in app.button if b.key and b.key.startswith("similar_pivot_")]
            started = time.perf_counter()
            pivots[0].click().run()
            timings.append(time.perf_counter() - started)
        return {
            "items": int(len(items)),
            "first_render_s (loads artifacts and index)": round(first, 2),
            "click_to_results_ms_median": round(1000 * statistics.median(timings), 1),
            "click_to_results_ms_max": round(1000 * max(timings), 1),
            "clicks": len(timings),
        }
    finally:
        if previous is None:
            os.environ.pop("RECSYS_CATALOG", None)
        else:
            os.environ["RECSYS_CATALOG"] = previous


def discover_benchmarks() -> list[tuple[str, Callable[..., dict]]]:
    """``(module name, its run function)`` for the modules of :data:`BENCHMARK_PACKAGE`, in name order."""
    try:
        package = importlib.import_module(BENCHMARK_PACKAGE)
    except ImportError:
        logger.info("no %s package: only the built-in benchmarks run", BENCHMARK_PACKAGE)
        return []
    found = []
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{BENCHMARK_PACKAGE}.{module_info.name}")
        run = getattr(module, "run", None)
        if callable(run):
            found.append((module_info.name, run))
        else:
            logger.warning("%s has no run() function; skipped", module.__name__)
    return found


def call_with_accepted(function: Callable[..., dict], offered: dict) -> dict:
    """Call ``function`` with the keyword arguments of ``offered`` that its signature names."""
    parameters = inspect.signature(function).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    kwargs = {k: v for k, v in offered.items() if takes_any or k in parameters}
    missing = [
        n for n, p in parameters.items()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n not in kwargs
    ]
    if missing:
        raise TypeError(f"{function.__name__} needs {', '.join(missing)}, which bench.py does not offer.")
    return function(**kwargs)


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def print_figures(name: str, figures: dict, depth: int = 0) -> None:
    """Nested figures as an indented outline, one value per line."""
    indent = "  " * depth
    print(f"\n{name}" if depth == 0 else f"{indent}{name}:")
    for key, value in figures.items():
        if isinstance(value, dict):
            print_figures(str(key), value, depth + 1)
        else:
            print(f"{indent}  {key:<{max(8, 32 - 2 * depth)}} {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes only (the tiny world), for a smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--only", type=lambda text: [n.strip() for n in text.split(",") if n.strip()],
                        help="run only these benchmark modules (comma-separated, e.g. index_scale,load); the full "
                             "index_scale alone takes 1.5-2.5 hours on 2 cores")
    args = parser.parse_args(argv)
    known = [name for name, _ in discover_benchmarks()]
    unknown = sorted(set(args.only or []) - set(known))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; the modules are {', '.join(known)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    report: dict = {"machine": machine(), "quick": args.quick, "benchmarks": {}}
    failures = 0

    def record(name: str, run: Callable[[], dict]) -> None:
        nonlocal failures
        logger.info("running %s", name)
        try:
            figures = run()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            logger.exception("%s failed", name)
            figures = {"error": f"{type(exc).__name__}: {exc}"}
            failures += 1
        report["benchmarks"][name] = figures
        print_figures(name, figures)

    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as scratch:
        scratch = Path(scratch)
        chosen = [(n, f) for n, f in discover_benchmarks() if not args.only or n in args.only]
        # With --only, a world is built (and the built-in benchmarks run) only when a chosen module reads one.
        needs_world = not args.only or any("catalog_dir" in inspect.signature(f).parameters for _, f in chosen)
        presets = ([] if not needs_world else ["tiny"] if args.quick else ["tiny", "demo"])
        for preset in presets:
            record(f"build_demo_world.{preset}", lambda p=preset: bench_build_demo_world(p, scratch / p, args.seed))
        built = [scratch / p for p in reversed(presets) if (scratch / p / "items.parquet").is_file()]
        offered = {"quick": args.quick, "seed": args.seed}
        if built:
            offered["catalog_dir"] = built[0]  # the largest world that was built
            # Benchmarks of the models run on precomputed embeddings, as the app does: compute them once here.
            record(f"precompute.{built[0].name}", lambda: bench_precompute(built[0]))
            # The page as a user feels it (Streamlit AppTest): UI timing lives here, outside the library.
            if not args.only:
                record("similar_click_to_results", lambda: bench_similar_click(built[0], quick=args.quick))
        for name, function in chosen:
            work_dir = scratch / "work" / name
            work_dir.mkdir(parents=True)
            record(name, lambda f=function, w=work_dir: call_with_accepted(f, {**offered, "work_dir": w}))

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
