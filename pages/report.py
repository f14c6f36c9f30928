"""Model report: every model's metrics against the baselines and the oracle, and the benchmark figures.

Rows are labelled with the model registry's titles; :mod:`recsys.ui.report_view` draws each section.
"""

import streamlit as st

from recsys import ui

ui.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

catalog = ui.current_catalog()
st.title("Model report", anchor=False)
st.caption("Each method is scored with its paper's protocol on this catalog, next to simple baselines and, on "
           "the built-in world, the oracle that knows the true tastes and compatibility. Every figure comes "
           "from running the models (`scripts/evaluate.py`); none is written by hand.")

report = ui.report_view.read(catalog)
if report is None:
    ui.report_gate(catalog)  # the set-up writes a quick report: start (or join) it instead of asking for a command
    st.stop()
ui.report_view.heading(report)
ui.evaluation_gate(catalog)
ui.report_view.tasks(report)
ui.report_view.uploads(report)
ui.report_view.requests(report)
ui.report_view.benchmarks(catalog)
