"""The ``ray`` engine of the precompute pipeline: images read, decoded and encoded by a Ray Data pipeline.

:func:`recsys.precompute.precompute` plans the shards, fits the PCA, encodes the text, assembles the arrays and
writes the manifest; an engine only turns catalog rows into image vectors. This one runs, on a local Ray instance
or a cluster (Ray Data's batch-inference pattern, "Offline batch inference" in the Ray docs)::

    rows (position, item_id, image_path) --map_batches--> decode + preprocess (CPU tasks)
         --map_batches--> one stateful encoder per worker (an actor pool; a GPU each with num_gpus_per_worker)
         --> the driver, in order

Ray is an optional extra (``pip install -r requirements-scale.txt``): it is imported on first use, and a missing
install is one sentence (:class:`recsys.precompute_engine.EngineError`). On a cluster, every node needs the project's
requirements and the catalog folder at the same path (a shared file system); this module's package is shipped to
the workers with the job.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from recsys.catalog import Catalog
from recsys.encoders import Encoder, check_spec
from recsys.precompute_engine import EngineError, read_item_image

logger = logging.getLogger(__name__)

#: Environment variables the driver passes on to Ray's workers when they are set (offline hubs, OpenMP's
#: spin policy, the studio's settings).
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "OMP_WAIT_POLICY", "RECSYS_DEVICE")
#: Input rows are split into at most this many blocks: enough to spread the decoding over a cluster, few enough
#: that Ray's per-block bookkeeping stays small for millions of rows.
MAX_INPUT_BLOCKS = 2000
INSTALL_HINT = "pip install -r requirements-scale.txt"


def import_ray():
    """``ray`` with ``ray.data`` loaded.

    Raises
    ------
    EngineError
        When Ray Data is not installed (one sentence naming the install command).
    """
    try:
        import ray
        import ray.data  # noqa: F401  (the pipeline's API)
    except ImportError:
        raise EngineError(f"The ray engine needs Ray Data, which is not installed; run {INSTALL_HINT}.") from None
    return ray


# ---------------------------------------------------------------------- the pipeline's stages (run on workers)
def decode_batch(batch: dict[str, np.ndarray], root: str, preprocess) -> dict[str, np.ndarray]:
    """Decode and preprocess a batch of catalog rows: ``{"position", "item_id", "image_path"}`` ->
    ``{"position": (b,) int64, "pixels": (b, C, H, W) float32, "error": (b,) str}``.

    The images are read by :func:`recsys.precompute_engine.read_item_image` over a catalog holding just these rows,
    so colour modes, transparency and an image that cannot be read (a blank picture and the reason in ``error``)
    are handled exactly as the local engine handles them: one damaged photo never fails the Ray job.
    """
    import pandas as pd
    import torch

    rows = Catalog(root=Path(root), items=pd.DataFrame({"item_id": batch["item_id"], "image_path": batch["image_path"]}))
    read = [read_item_image(rows, item_id, preprocess) for item_id in batch["item_id"]]
    return {"position": batch["position"].astype(np.int64), "pixels": torch.stack([p for p, _ in read]).numpy(),
            "error": np.array([error for _, error in read], dtype=object)}


class ImageEncoderWorker:
    """The encoding stage: one encoder per Ray worker, built once from its spec and kept for every batch.

    Parameters
    ----------
    spec : str
        Encoder spec (:func:`recsys.encoders.create_encoder`).
    device : str
        ``"cuda"`` for a worker holding a GPU, else ``"cpu"``.
    with_maps : bool
        Also return the raw feature maps.
    """

    def __init__(self, spec: str, device: str, with_maps: bool):
        from recsys.encoders import create_encoder

        self.encoder = create_encoder(spec, device)
        self.with_maps = with_maps

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"position", "pixels", "error"}`` -> ``{"position", "error", "pooled": (b, dim) float32[, "maps":
        (b, C, h, w)]}``."""
        import torch

        pixels = torch.from_numpy(np.ascontiguousarray(batch["pixels"]))
        out = {"position": batch["position"], "error": batch["error"]}
        if self.with_maps:
            out["pooled"], out["maps"] = self.encoder.encode_pixels(pixels, return_feature_maps=True)
        else:
            out["pooled"] = self.encoder.encode_pixels(pixels)
        return out


# ---------------------------------------------------------------------- the engine
class RayEngine:
    """Images read, decoded and encoded by Ray Data on a local Ray instance or a cluster.

    Parameters
    ----------
    address : str, optional
        A running cluster to join (``"auto"``, ``"ray://head:10001"``, ...); None starts a local instance (or uses
        the one this process already started).
    num_gpus_per_worker : float
        GPUs each encoder worker holds (0: CPU workers; 0.5: two workers share a GPU). Workers with a GPU encode
        with fp16 autocast, as the local engine does on CUDA.
    num_encode_workers : int, optional
        Encoder workers (one model each); default: as many as the cluster's GPUs allow with
        ``num_gpus_per_worker`` (decoding then runs as tasks on the other CPUs), else one per CPU (Ray Data fuses
        the decoding into CPU encoder workers, one thread each).
    num_cpus : int, optional
        CPUs of a local instance (default: all of this machine's); ignored when joining a cluster.
    object_store_mb : int
        Object store of a local instance, in MiB (batches stream through it; at least 75).

    Notes
    -----
    Ray's workers build their own encoder from the encoder's spec, so it must be one
    :func:`recsys.encoders.create_encoder` knows. A local instance started here stays up for later runs in this
    process (``ray.shutdown()`` ends it).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_gpus_per_worker: float = 0.0,
        num_encode_workers: int | None = None,
        num_cpus: int | None = None,
        object_store_mb: int = 256,
    ):
        self.address = address
        self.num_gpus_per_worker = num_gpus_per_worker
        self.num_encode_workers = num_encode_workers
        self.num_cpus = num_cpus
        self.object_store_mb = object_store_mb

    # ------------------------------------------------------------------ cluster
    def check(self) -> None:
        """Raise :class:`recsys.precompute_engine.EngineError` (one sentence) when Ray Data is not installed."""
        import_ray()

    def connect(self):
        """Start (or join) Ray; return the ``ray`` module.

        Raises
        ------
        EngineError
            When Ray is not installed or the cluster at :attr:`address` cannot be joined.
        """
        ray = import_ray()
        if ray.is_initialized():
            return ray
        import recsys

        package_dir = Path(recsys.__file__).resolve().parent
        env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
        try:
            if self.address is None:
                # Local workers share this file system: putting the checkout on their path is enough.
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_dir.parent), os.environ.get("PYTHONPATH")]))
                ray.init(
                    address="local",  # a new instance, even when a cluster started on this machine is up
                    num_cpus=self.num_cpus or os.cpu_count() or 1,
                    object_store_memory=max(75, int(self.object_store_mb)) * 2**20,
                    include_dashboard=False,
                    runtime_env={"env_vars": env},
                )
            else:
                # A cluster's nodes may hold another checkout, or none: ship this package with the job.
                ray.init(
                    address=self.address,
                    runtime_env={"py_modules": [str(package_dir)], "env_vars": env,
                                 "excludes": ["__pycache__", "*.pyc"]},
                )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            if self.address is None:
                raise EngineError(f"Could not start a local Ray instance ({exc}).") from None
            # Ray 2.60 clusters use token authentication by default, and a joining driver does not opt in by itself.
            raise EngineError(f"Could not join the Ray cluster at {self.address} ({exc}); check the address and, for "
                              f"a cluster with token authentication, set RAY_AUTH_MODE=token and the cluster's token "
                              f"(ray get-auth-token).") from None
        return ray

    def _encode_workers(self, ray) -> int:
        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 1)), float(resources.get("GPU", 0.0))
        if self.num_gpus_per_worker > 0 and gpus < self.num_gpus_per_worker:
            raise EngineError(f"Each encoder worker asks for {self.num_gpus_per_worker} GPU(s) but the Ray cluster "
                              f"has {gpus:g}; pass --num-gpus-per-worker 0 to encode on CPUs.")
        if self.num_encode_workers is not None:
            return max(1, int(self.num_encode_workers))
        if self.num_gpus_per_worker > 0:
            return max(1, int(gpus // self.num_gpus_per_worker))
        return max(1, cpus)

    # ------------------------------------------------------------------ engine API
    def encode_images(
        self, catalog: Catalog, encoder: Encoder, positions: np.ndarray, batch_size: int, with_maps: bool,
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None, list[str]]]:
        """Encode the images of the catalog rows ``positions``, in that order (see
        :meth:`recsys.precompute_engine.LocalEngine.encode_images`: same batches' contract -- an unreadable image is
        a blank picture and its reason, never a failed task --, same vectors within float rounding).

        Raises
        ------
        EngineError
            When Ray is missing, the cluster cannot be joined or lacks the GPUs asked for.
        recsys.encoders.EncoderError
            When the encoder's spec cannot be built on the workers.
        """
        check_spec(encoder.spec)  # before any worker starts: an unknown spec is one sentence, not a worker crash
        positions = np.asarray(positions, dtype=np.int64)
        if not len(positions):
            return
        ray = self.connect()
        workers = self._encode_workers(ray)
        self.workers_ = workers
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # shards are cut from the stream in catalog order
        context.enable_progress_bars = False  # precompute draws its own

        items = catalog.items.iloc[positions]
        rows = [{"position": int(p), "item_id": str(i), "image_path": str(path)}
                for p, i, path in zip(positions, items["item_id"], items["image_path"])]
        blocks = min(MAX_INPUT_BLOCKS, math.ceil(len(rows) / batch_size))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks)
        dataset = dataset.map_batches(
            decode_batch,
            fn_kwargs={"root": str(catalog.root), "preprocess": encoder.preprocess},
            batch_size=batch_size,
            batch_format="numpy",
            num_cpus=1,
        )
        gpus = float(self.num_gpus_per_worker)
        dataset = dataset.map_batches(
            ImageEncoderWorker,
            fn_constructor_kwargs={"spec": encoder.spec, "device": "cuda" if gpus > 0 else "cpu",
                                   "with_maps": with_maps},
            compute=ray.data.ActorPoolStrategy(size=workers),
            batch_size=batch_size,
            batch_format="numpy",
            num_cpus=1,
            num_gpus=gpus if gpus > 0 else None,
        )
        logger.info("ray engine: %d images, %d encoder worker(s), %g GPU(s) each", len(positions), workers, gpus)
        expected, started = 0, time.perf_counter()
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            if not expected:
                # Workers' start (interpreter, torch, model) until the first batch: the fixed cost of a run.
                self.first_batch_s_, self.first_batch_items_ = time.perf_counter() - started, len(batch["position"])
            got = batch["position"]
            if not np.array_equal(got, positions[expected : expected + len(got)]):
                raise EngineError("Ray Data returned the images out of order; rerun (finished shards are kept).")
            expected += len(got)
            yield batch["pooled"], (batch["maps"] if with_maps else None), [str(e) for e in batch["error"]]
        if expected != len(positions):
            raise EngineError(f"Ray Data returned {expected} of {len(positions)} images; rerun (finished shards are kept).")

    def describe(self) -> dict:
        """What the manifest's timings record about the engine."""
        return {
            "name": self.name,
            "address": self.address or "local",
            "encode_workers": getattr(self, "workers_", self.num_encode_workers),
            "gpus_per_worker": self.num_gpus_per_worker,
            "first_batch_s": round(getattr(self, "first_batch_s_", 0.0), 3),
            "first_batch_items": getattr(self, "first_batch_items_", 0),
        }
