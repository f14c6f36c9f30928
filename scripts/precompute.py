"""Encode a catalog into ``<catalog>/artifacts/`` (DESIGN sections 6 and 9).

    python scripts/precompute.py --catalog DIR [--image-encoder SPEC] [--text-encoder SPEC] [--device auto|cpu|cuda]
                                 [--engine local|ray] [--ray-address ADDR] [--num-gpus-per-worker G] [--batch-size B]

Resumable: finished shards are kept, so an interrupted run picks up where it stopped (whichever engine made them).
``--engine ray`` reads and encodes the images with Ray Data (``pip install -r requirements-scale.txt``): on a local
Ray instance, or on the cluster at ``--ray-address`` (every node needs the catalog folder at the same path).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
# Idle OpenMP threads sleep instead of spinning: on cores shared with other busy processes, spinning threads
# slow two-thread inference down ten-fold. Must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from recsys.artifacts import ArtifactError, default_num_workers, precompute  # noqa: E402
from recsys.precompute import EngineError, create_engine, list_engines  # noqa: E402
from recsys.catalog import Catalog, CatalogError  # noqa: E402
from recsys.config import DEFAULT_IMAGE_ENCODER, get_settings  # noqa: E402
from recsys.encoders import EncoderError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=settings.catalog_dir, help="catalog folder (default: %(default)s)")
    parser.add_argument("--image-encoder", default=settings.image_encoder or DEFAULT_IMAGE_ENCODER,
                        help="image encoder spec (default: %(default)s)")
    parser.add_argument(
        "--text-encoder",
        default=None,
        help="text encoder spec (default: the image encoder when it is a joint open_clip model, else minilm)",
    )
    parser.add_argument("--device", default=settings.device, choices=("auto", "cpu", "cuda"), help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"local engine: DataLoader workers (default: {default_num_workers('cpu')} on the CPU, "
                             f"{default_num_workers('cuda')} for a GPU)")
    parser.add_argument("--engine", default="local", choices=list_engines(),
                        help="what reads and encodes the images: this process, or Ray Data (default: %(default)s)")
    parser.add_argument("--ray-address", default=None,
                        help="ray engine: the cluster to join, e.g. auto or ray://head:10001 (default: a local instance)")
    parser.add_argument("--num-gpus-per-worker", type=float, default=0.0,
                        help="ray engine: GPUs per encoder worker (default: %(default)s, CPU workers)")
    parser.add_argument("--ray-workers", type=int, default=None,
                        help="ray engine: encoder workers (default: one per GPU share, else one per CPU)")
    parser.add_argument("--shard-size", type=int, default=512, help="items per resumable shard")
    parser.add_argument("--fmap-channels", type=int, default=256, help="feature-map channels kept by PCA (0: none)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="recompute everything, ignoring finished shards")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ray_only = {"--ray-address": args.ray_address, "--num-gpus-per-worker": args.num_gpus_per_worker,
                "--ray-workers": args.ray_workers}
    misplaced = [flag for flag, value in ray_only.items() if value] if args.engine != "ray" else []
    misplaced_engine = "ray"
    if args.engine == "ray" and args.workers is not None:
        misplaced, misplaced_engine = ["--workers"], "local"
    if misplaced:
        verb = "is" if len(misplaced) == 1 else "are"
        print(f"error: {', '.join(misplaced)} {verb} only for --engine {misplaced_engine}.", file=sys.stderr)
        return 2
    try:
        if args.engine == "ray":
            engine = create_engine("ray", address=args.ray_address, num_gpus_per_worker=args.num_gpus_per_worker,
                                   num_encode_workers=args.ray_workers)
        else:
            engine = create_engine("local", num_workers=args.workers)
        catalog = Catalog.load(args.catalog)
        manifest = precompute(
            catalog,
            image_encoder=args.image_encoder,
            text_encoder=args.text_encoder,
            device=args.device,
            batch_size=args.batch_size,
            shard_size=args.shard_size,
            fmap_channels=args.fmap_channels,
            seed=args.seed,
            force=args.force,
            progress=not args.quiet,
            threads=args.threads,
            engine=engine,
        )
    except (CatalogError, EncoderError, ArtifactError, EngineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {key: manifest.get(key) for key in ("item_count", "image_encoder", "text_encoder", "timings",
                                                  "unavailable_items")}
    print(json.dumps(summary, indent=2))
    if manifest.get("unavailable_items"):  # each was named in the log; the count is what to act on
        print(f"{len(manifest['unavailable_items'])} item(s) whose image cannot be read are marked unavailable "
              f"(listed above); replace their images and run again with --force.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
