"""Fashion recommendation studio: the library behind the Streamlit app.

Importable and testable without Streamlit; see ``DESIGN.md`` in the shared folder for the layout.
"""

import logging
import os

# On shared or small machines OpenMP's default busy-waiting makes multi-threaded torch/BLAS many times slower
# (measured ~10x on 2 shared cores); set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# faiss's loader logs every optional CPU build it probes and cannot load (AVX512, AVX2) at INFO, with the
# ModuleNotFoundError on a line of its own: it reads as a failure in every log where nothing failed. Its warnings stay.
logging.getLogger("faiss.loader").setLevel(logging.WARNING)

__version__ = "0.1.0"
