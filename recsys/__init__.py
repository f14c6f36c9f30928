"""Fashion recommendation studio: the library behind the Streamlit app.

Importable and testable without Streamlit; see ``DESIGN.md`` in the shared folder for the layout.
"""

import os

# On shared or small machines OpenMP's default busy-waiting makes multi-threaded torch/BLAS many times slower
# (measured ~10x on 2 shared cores); set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
