"""Fashion recommendation studio: the library behind the Streamlit app.

Importable and testable without Streamlit; see ``DESIGN.md`` in the shared folder for the layout.
"""

__version__ = "0.1.0"
