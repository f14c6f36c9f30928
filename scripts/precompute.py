"""Encode a catalog into ``<catalog>/artifacts/`` (DESIGN sections 6 and 9).

    python scripts/precompute.py --catalog DIR [--image-encoder SPEC] [--text-encoder SPEC] [--device auto|cpu|cuda]

Resumable: finished shards are kept, so an interrupted run picks up where it stopped.
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
from recsys.catalog import Catalog, CatalogError  # noqa: E402
from recsys.config import get_settings  # noqa: E402
from recsys.encoders import EncoderError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=settings.catalog_dir, help="catalog folder (default: %(default)s)")
    parser.add_argument("--image-encoder", default=settings.image_encoder, help="image encoder spec (default: %(default)s)")
    parser.add_argument(
        "--text-encoder",
        default=None,
        help="text encoder spec (default: the image encoder when it is a joint open_clip model, else minilm)",
    )
    parser.add_argument("--device", default=settings.device, choices=("auto", "cpu", "cuda"), help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None,
                        help=f"DataLoader workers (default: {default_num_workers('cpu')} on the CPU, "
                             f"{default_num_workers('cuda')} for a GPU)")
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
    try:
        catalog = Catalog.load(args.catalog)
        manifest = precompute(
            catalog,
            image_encoder=args.image_encoder,
            text_encoder=args.text_encoder,
            device=args.device,
            batch_size=args.batch_size,
            num_workers=args.workers,
            shard_size=args.shard_size,
            fmap_channels=args.fmap_channels,
            seed=args.seed,
            force=args.force,
            progress=not args.quiet,
            threads=args.threads,
        )
    except (CatalogError, EncoderError, ArtifactError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {key: manifest[key] for key in ("item_count", "image_encoder", "text_encoder", "timings")}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
