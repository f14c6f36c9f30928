"""The vector index every page searches with: :class:`VectorIndex`, a facade over one backend object per kind.

- :mod:`recsys.index.base`: the :class:`~recsys.index.base.IndexBackend` protocol and the input check;
- :mod:`recsys.index.faiss_kinds`: ``exact``, ``hnsw`` and ``ivf`` (FAISS, in process);
- :mod:`recsys.index.ivfpq`: ``ivfpq``, product-quantized codes re-ranked by exact vectors;
- :mod:`recsys.index.milvus`: ``milvus``, a Milvus collection, and the choice of backend;
- :mod:`recsys.index.facade`: :class:`VectorIndex` (parameters, labels and filters, files), which asks the backend
  of the kind it built and never which kind that is.
"""

from recsys.index.facade import BACKENDS, KINDS, SIDECAR_VERSION, VectorIndex
from recsys.index.ivfpq import COMPRESS_THRESHOLD_BYTES

__all__ = ["BACKENDS", "COMPRESS_THRESHOLD_BYTES", "KINDS", "SIDECAR_VERSION", "VectorIndex"]
