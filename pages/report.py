"""Model report: every model's metrics against the baselines and the oracle, and the benchmark figures."""

import json

import streamlit as st

from recsys import services
from recsys.reports import BENCH_NAME, REPORT_NAME, ROW_NOTES, baseline_names, gap_closed, report_table

catalog = services.current_catalog()
st.title("Model report", anchor=False)
st.caption("Each method is scored with its paper's protocol on this catalog, next to simple baselines and, on "
           "the built-in world, the oracle that knows the true tastes and compatibility. Every figure comes "
           "from running the models (`scripts/evaluate.py`); none is written by hand.")

report_path = catalog.root / "artifacts" / REPORT_NAME
bench_path = catalog.root / "artifacts" / BENCH_NAME

if not report_path.is_file():
    st.info(f"No evaluation report for this catalog yet. Create it with "
            f"`python scripts/evaluate.py --catalog {catalog.root} --task all --json {report_path}`.",
            icon=":material/query_stats:")
else:
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        st.error(f"The report {report_path.name} cannot be read ({exc}).", icon=":material/error:")
        st.stop()
    tasks = [t for t in report if not t.startswith("_")]
    if not tasks:
        st.warning("The report holds no task.", icon=":material/warning:")
    for task, tab in zip(tasks, st.tabs([t.capitalize() for t in tasks])):
        with tab:
            table = report_table(report[task])
            st.dataframe(table.style.format("{:.4f}", na_rep="–"), width="stretch")
            metric = st.selectbox("Metric", list(table.columns), key=f"report_metric_{task}")
            st.bar_chart(table[metric].dropna(), horizontal=True, height=40 + 28 * len(table))
            closed = gap_closed(report[task], metric)
            if closed:
                st.markdown("**Share of the gap from the best baseline to the oracle closed on "
                            f"{metric}:** " + ", ".join(f"{m} {v:.0%}" for m, v in closed.items()))
            baselines = [m for m in table.index if m in baseline_names()]
            if baselines:
                st.caption(f"Baselines: {', '.join(baselines)}.")
            for row in table.index.intersection(list(ROW_NOTES)):
                st.caption(ROW_NOTES[row])
    for task, reason in report.get("_skipped", {}).items():
        st.caption(f"{task}: {reason}")

st.subheader("Benchmarks", anchor=False)
if bench_path.is_file():
    try:
        bench = json.loads(bench_path.read_text(encoding="utf-8"))
        st.json(bench, expanded=1)
    except (OSError, json.JSONDecodeError) as exc:
        st.error(f"The benchmark file {bench_path.name} cannot be read ({exc}).", icon=":material/error:")
else:
    st.caption(f"No benchmark figures for this catalog; `make bench` writes them (`scripts/bench.py --json {bench_path}`).")
