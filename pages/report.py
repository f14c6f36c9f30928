"""Model report: every model's metrics against the baselines and the oracle, and the benchmark figures.

Rows are labelled with the model registry's titles (``services.reports.row_title``).
"""

import json

import streamlit as st

from recsys import services

services.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

reports = services.reports
catalog = services.current_catalog()
st.title("Model report", anchor=False)
st.caption("Each method is scored with its paper's protocol on this catalog, next to simple baselines and, on "
           "the built-in world, the oracle that knows the true tastes and compatibility. Every figure comes "
           "from running the models (`scripts/evaluate.py`); none is written by hand.")

report_path = catalog.root / "artifacts" / reports.REPORT_NAME
bench_path = catalog.root / "artifacts" / reports.BENCH_NAME

try:
    report = reports.read_report(report_path)
except ValueError as exc:  # a damaged report is a report not computed: say so, and compute it as if it were missing
    st.warning(str(exc), icon=":material/error:")
    report = None

if report is None:
    # The set-up writes a quick report: start (or join) it instead of asking for a command.
    job = services.jobs().get(services.setup_key(catalog))
    if job is None and services.settings().catalog_is_builtin:
        job = services.start_setup(catalog)
    if job is not None and job.running:
        services.show_job(job)
    else:
        if job is not None and job.error:
            st.error(f"{job.title} failed: {job.error}", icon=":material/error:")
        st.info("No evaluation report for this catalog yet: the button trains the pages' models where they are "
                "missing and computes a quick report in the background.", icon=":material/query_stats:")
        if st.button("Compute the report", key="report_setup", type="primary", icon=":material/query_stats:"):
            services.show_job(services.start_setup(catalog))
    st.stop()
else:
    meta = report.get("_meta", {})
    kind = "Quick evaluation (short training schedules; the pages' own models, baselines and oracle)" \
        if meta.get("kind") == "quick" else "Full evaluation"
    if meta:
        st.caption(f"{kind}, computed {meta.get('computed_at', '?')} on the catalog {meta.get('catalog', '?')} in "
                   f"{meta.get('seconds', '?')} s.")
    evaluation = services.jobs().get(services.evaluation_key(catalog))
    if evaluation is not None and evaluation.running:
        services.show_job(evaluation)
    else:
        if evaluation is not None and evaluation.error:
            st.error(f"The full evaluation failed: {evaluation.error}", icon=":material/error:")
        if st.button("Run the full evaluation", key="report_full", icon=":material/play_arrow:",
                     help="Every model with its full training schedule, in the background; the report is replaced "
                          "when it is done (several minutes on the built-in world)."):
            services.show_job(services.start_evaluation(catalog))
    tasks = [t for t in report if not t.startswith("_")]
    if not tasks:
        st.warning("The report holds no task.", icon=":material/warning:")
    for task, tab in zip(tasks, st.tabs([t.capitalize() for t in tasks])):
        with tab:
            table = reports.report_table(report[task])
            titles = {name: reports.row_title(task, name) for name in table.index}
            shown = table.rename(index=titles)
            st.dataframe(reports.display_table(report[task]).rename(index=titles), width="stretch")
            if not reports.standard_errors(report[task]).empty:
                st.caption("± one standard error over the test queries (Hanley & McNeil's for an AUC over sets). The "
                           "verdicts below compare two rows by the standard error of their difference, paired over "
                           "the queries both answered: within two of it, they are not told apart.")
            if table.isna().to_numpy().any():
                st.caption("n/a: a figure that could not be computed on this catalog (every query it averages was "
                           "undefined, e.g. a pool with nothing to rank against)"
                           + ("; the undefined column counts the queries left out of each mean." if "undefined" in
                              table.columns else "."))
            metric = st.selectbox("Metric", list(table.columns), key=f"report_metric_{task}")
            st.bar_chart(shown[metric].dropna(), horizontal=True, height=40 + 28 * len(table))
            # Only computed figures enter the gap: an n/a (null) figure has no place in a difference.
            closed = reports.gap_closed(table.apply(lambda row: row.dropna().to_dict(), axis=1).to_dict(), metric)
            if closed:
                st.markdown("**Share of the gap from the best baseline to the oracle closed on "
                            f"{metric}:** " + ", ".join(f"{titles.get(m, m)} {v:.0%}" for m, v in closed.items()))
            baselines = [titles[m] for m in table.index if m in reports.baseline_names()]
            if baselines:
                st.caption(f"Baselines: {', '.join(baselines)}.")
            for row in table.index:
                if (task, row) in reports.ROW_NOTES:
                    st.caption(reports.ROW_NOTES[task, row])
            for claim in reports.claims(task, report[task], report.get(reports.PAIRED, {}).get(task)):
                st.markdown(reports.claim_sentence(claim, titles))
            reported = reports.paper_table(task)
            if not reported.empty:
                st.markdown("**What the papers reported (other data)**")
                st.caption("Figures the methods' own papers give on their datasets, with their own splits, features "
                           "and candidates: they show the order of magnitude a method reached where it was introduced, "
                           "not a score to compare with the table above.")
                reported = reported.assign(row=[titles.get(r, reports.row_title(task, r)) for r in reported["row"]])
                st.dataframe(reported, width="stretch", hide_index=True)
    for task, reason in report.get("_skipped", {}).items():
        st.caption(f"{task}: {reason}")
    uploads = report.get("_uploads", {})
    if uploads:
        st.subheader("Real photos uploaded to this catalog", anchor=False)
        st.caption("Labelled photos read and searched as the Similar items page does "
                   "(`scripts/evaluate.py --task upload --photos SRC`): is the predicted category or colour one the "
                   "photo's label accepts, and what share of the top 5 similar items is; chance beside each.")
        st.dataframe(reports.upload_table(uploads), width="stretch")
        for source, figures in uploads.items():
            if not figures.get("confusion"):
                continue
            with st.expander(f"{source}: what each photo label was read as, and how sure the page was"):
                error = figures.get("calibration_error")
                st.caption("Rows: the photos' own labels; columns: the category the page read. Below, per stated "
                           "confidence, the share that was right" +
                           (f" (expected calibration error {error:.3f})." if error is not None else "."))
                st.dataframe(reports.upload_confusion_table(figures), width="stretch")
                st.dataframe(reports.upload_calibration_table(figures), width="stretch", hide_index=True)

    own_words = report.get("_requests", {})
    if own_words:
        st.subheader("Requests in people's own words", anchor=False)
        st.caption("Free-text searches, captions on a reference and chat messages run through the pages "
                   "(`scripts/evaluate.py --task requests --requests FILE.json`): hits in the top 10 over what the "
                   "catalog allows (for the Stylist: proposed slots that meet the request), ± one standard error over "
                   "the requests, beside chance; each model as the page runs it (understanding the words) and by the "
                   "model alone.")
        st.dataframe(reports.requests_table(own_words), width="stretch", hide_index=True)

st.subheader("Benchmarks", anchor=False)
if bench_path.is_file():
    try:
        bench = json.loads(bench_path.read_text(encoding="utf-8"))
        st.json(bench, expanded=1)
    except (OSError, json.JSONDecodeError) as exc:
        st.error(f"The benchmark file {bench_path.name} cannot be read ({exc}).", icon=":material/error:")
else:
    # `make bench` alone writes data/bench.json, not this catalog's file (a new user's trial followed the old hint)
    st.caption(f"No benchmark figures for this catalog; `make bench BENCH_ARGS=\"--json {bench_path}\"` writes them "
               f"here.")
