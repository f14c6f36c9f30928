"""The Model report page's sections: each task's table, chart, verdicts and the papers' own figures, the uploaded
photos' figures, the requests in people's own words and the benchmark file (:mod:`recsys.reports` reads and
computes them; this module draws them)."""

from __future__ import annotations

import json

import streamlit as st

from recsys import reports
from recsys.catalog import Catalog


def read(catalog: Catalog) -> dict | None:
    """The catalog's report, or None when it has none; a damaged one is said in one sentence and read as none."""
    try:
        return reports.read_report(catalog.root / "artifacts" / reports.REPORT_NAME)
    except ValueError as exc:  # a damaged report is a report not computed: say so, and compute it as if it were missing
        st.warning(str(exc), icon=":material/error:")
        return None


def heading(report: dict) -> None:
    """What kind of evaluation the report holds, when and on what it was computed, and how long it took."""
    meta = report.get("_meta", {})
    kind = "Quick evaluation (short training schedules; the pages' own models, baselines and oracle)" \
        if meta.get("kind") == "quick" else "Full evaluation"
    if meta:
        st.caption(f"{kind}, computed {meta.get('computed_at', '?')} on the catalog {meta.get('catalog', '?')} in "
                   f"{meta.get('seconds', '?')} s.")


def task_section(task: str, section: dict, paired: dict | None) -> None:
    """One task's tab: the table with standard errors, a chart of one metric, the gap closed, the verdicts and what
    the papers reported."""
    table = reports.report_table(section)
    titles = {name: reports.row_title(task, name) for name in table.index}
    shown = table.rename(index=titles)
    st.dataframe(reports.display_table(section).rename(index=titles), width="stretch")
    if not reports.standard_errors(section).empty:
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
    for claim in reports.claims(task, section, paired):
        st.markdown(reports.claim_sentence(claim, titles))
    reported = reports.paper_table(task)
    if not reported.empty:
        st.markdown("**What the papers reported (other data)**")
        st.caption("Figures the methods' own papers give on their datasets, with their own splits, features "
                   "and candidates: they show the order of magnitude a method reached where it was introduced, "
                   "not a score to compare with the table above.")
        reported = reported.assign(row=[titles.get(r, reports.row_title(task, r)) for r in reported["row"]])
        st.dataframe(reported, width="stretch", hide_index=True)


def tasks(report: dict) -> None:
    """A tab per task of the report, then the tasks it skipped with why."""
    names = [t for t in report if not t.startswith("_")]
    if not names:
        st.warning("The report holds no task.", icon=":material/warning:")
    for task, tab in zip(names, st.tabs([t.capitalize() for t in names])):
        with tab:
            task_section(task, report[task], report.get(reports.PAIRED, {}).get(task))
    for task, reason in report.get("_skipped", {}).items():
        st.caption(f"{task}: {reason}")


def uploads(report: dict) -> None:
    """The figures of labelled real photos read and searched as the Similar items page does, if any."""
    figures_by_source = report.get("_uploads", {})
    if not _headed_table(figures_by_source, "Real photos uploaded to this catalog",
                         "Labelled photos read and searched as the Similar items page does "
                         "(`scripts/evaluate.py --task upload --photos SRC`): is the predicted category or colour one "
                         "the photo's label accepts, and what share of the top 5 similar items is; chance beside each.",
                         reports.upload_table, hide_index=False):
        return
    for source, figures in figures_by_source.items():
        if not figures.get("confusion"):
            continue
        with st.expander(f"{source}: what each photo label was read as, and how sure the page was"):
            error = figures.get("calibration_error")
            st.caption("Rows: the photos' own labels; columns: the category the page read. Below, per stated "
                       "confidence, the share that was right" +
                       (f" (expected calibration error {error:.3f})." if error is not None else "."))
            st.dataframe(reports.upload_confusion_table(figures), width="stretch")
            st.dataframe(reports.upload_calibration_table(figures), width="stretch", hide_index=True)


def requests(report: dict) -> None:
    """The figures of requests in people's own words run through the pages, if any."""
    _headed_table(report.get("_requests", {}), "Requests in people's own words",
                  "Free-text searches, captions on a reference and chat messages run through the pages "
                  "(`scripts/evaluate.py --task requests --requests FILE.json`): hits in the top 10 over what the "
                  "catalog allows (for the Stylist: proposed slots that meet the request), ± one standard error over "
                  "the requests, beside chance; each model as the page runs it (understanding the words) and by the "
                  "model alone.", reports.requests_table, hide_index=True)


def _headed_table(figures: dict, title: str, caption: str, table, hide_index: bool) -> bool:
    """A report section's heading, caption and ``table(figures)``; False (nothing drawn) without figures."""
    if not figures:
        return False
    st.subheader(title, anchor=False)
    st.caption(caption)
    st.dataframe(table(figures), width="stretch", hide_index=hide_index)
    return True


def benchmarks(catalog: Catalog) -> None:
    """The catalog's benchmark file, or the command that writes it."""
    path = catalog.root / "artifacts" / reports.BENCH_NAME
    st.subheader("Benchmarks", anchor=False)
    if path.is_file():
        try:
            st.json(json.loads(path.read_text(encoding="utf-8")), expanded=1)
        except (OSError, json.JSONDecodeError) as exc:
            st.error(f"The benchmark file {path.name} cannot be read ({exc}).", icon=":material/error:")
    else:
        # `make bench` alone writes data/bench.json, not this catalog's file (a new user's trial followed the old hint)
        st.caption(f"No benchmark figures for this catalog; `make bench BENCH_ARGS=\"--json {path}\"` writes them "
                   f"here.")
