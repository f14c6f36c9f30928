"""Evaluation reports, read and written: where a catalog's report lives (:func:`report_path`), writing it
atomically (:func:`write_report`, :func:`add_upload_figures`), and reading it: tables per task, row labels, and the
share of the baseline-to-oracle gap a model closes.

A report is ``{task: {model: {metric: value}}}`` as ``scripts/evaluate.py`` writes it (plus ``_skipped``, and
``_paired``: ``{task: [paired claim]}``, :func:`pop_paired_claims`). Rows are keyed by the registry's model names and
labelled with the registry's titles (:func:`row_title`); the notes below only explain rows, they do not name them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import metrics
from recsys.metrics import PER_QUERY
from recsys.models.registry import model_title
from recsys.papers import paper_table  # noqa: F401  (the Model report page reads it from here)
from recsys.utils import read_json

logger = logging.getLogger(__name__)

#: Where the report the Model report page draws lives, under the catalog's artifacts (:func:`report_path`).
REPORT_NAME = "report.json"
#: The report's key of the paired claims, ``{task: [claim]}`` (:func:`pop_paired_claims`).
PAIRED = "_paired"
BENCH_NAME = "bench.json"
BASELINES = ("random", "popularity", "visual-similarity", "image-only", "text-only", "zero-shot")
ORACLE = "oracle"
#: Rows that are neither baselines nor models a page offers, and what they show.
#: What a row is, where its title cannot say it, per ``(task, row)``.
ROW_NOTES = {
    ("personal", "vbpr-attributes"): "vbpr-attributes is VBPR fitted on the catalog's labelled attributes instead of "
                                     "image features: on the built-in world the true tastes are linear in them, so it "
                                     "is the ceiling an image encoder's features could reach, not a model the For you "
                                     "page offers.",
    ("compat", ORACLE): "The oracle scores a set by its items' true pairwise compatibility alone. The world draws each "
                        "outfit from a style as well (every item by its match to the outfit's style plus its "
                        "compatibility with the items already chosen), so items of one outfit also share a style, "
                        "which the learned models pick up and the oracle ignores: it is not a ceiling here, and a "
                        "model may close more than 100% of the gap.",
    ("similar", ORACLE): "The oracle ranks by the true attributes the query shares, category first and every other "
                         "attribute alike: the ceiling of P@k, not of colour@10, which the shopper ranking puts first.",
}


# ---------------------------------------------------------------------- writing
def report_path(catalog_root: str | os.PathLike) -> Path:
    """``<catalog>/artifacts/report.json``."""
    return Path(catalog_root) / "artifacts" / REPORT_NAME


def write_report(report: dict, path: str | os.PathLike, *, kind: str, catalog, seconds: float) -> None:
    """Write ``report`` as JSON atomically, with a ``_meta`` entry: ``kind`` (``quick`` or ``full``), when, on which
    catalog (name and fingerprint) and in how many seconds.

    Raises
    ------
    OSError
        When the file cannot be written.
    """
    meta = {"kind": kind, "computed_at": _now(), "catalog": catalog.name,
            "catalog_fingerprint": catalog.fingerprint(), "seconds": round(seconds, 1)}
    _write_atomically(Path(path), report | {"_meta": meta})


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _write_atomically(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    os.replace(temporary, path)


def add_to_report(catalog_root, section: str, source, entry: dict, *, replace_damaged: bool) -> Path:
    """Add ``entry`` (with when) under ``section`` (``_uploads``, ``_requests``), keyed by ``source``'s name, to
    the catalog's report, creating the report when it has none; returns its path. ``replace_damaged``: a report
    that cannot be read is replaced (it held nothing to keep) instead of refused.

    Raises
    ------
    OSError
        When the report cannot be written.
    ValueError
        When the existing report cannot be read and not ``replace_damaged``.
    """
    path = report_path(catalog_root)
    report = ({} if report_unreadable(path) else read_report(path)) if replace_damaged else (read_report(path) or {})
    report.setdefault(section, {})[Path(source).name or str(source)] = dict(entry, computed_at=_now())
    _write_atomically(path, report)
    return path


def add_upload_figures(catalog, figures: dict, *, source, label_map=None) -> Path:
    """Add the upload protocol's ``figures`` on the photos of ``source`` to the catalog's report (under
    ``_uploads``, one entry per source, with when and with which label map), creating the report when it has none;
    returns its path.

    Raises
    ------
    OSError
        When the report cannot be written (a damaged one is replaced: it held nothing to keep).
    """
    entry = dict(figures, label_map=str(label_map) if label_map else None)
    return add_to_report(catalog.root, "_uploads", source, entry, replace_damaged=True)


# ---------------------------------------------------------------------- reading
def baseline_names() -> tuple[str, ...]:
    """Row names that count as baselines in :func:`gap_closed`."""
    return BASELINES


def read_report(path: str | os.PathLike) -> dict | None:
    """The report in ``path`` (``{task: {model: {metric: value}}}``), or None when there is none.

    Raises
    ------
    ValueError
        When the file cannot be read, is not a JSON object, or is no evaluation report (a task or entry that is not
        a table: another tool's file of the same name); one sentence naming the file.
    """
    try:
        report = read_json(path)
    except ValueError as exc:
        raise ValueError(f"The report {Path(path).name} cannot be read ({exc}).") from None
    problem = _not_a_report(report) if report is not None else None
    if problem:
        raise ValueError(f"The report {Path(path).name} is not an evaluation report ({problem}).")
    return report


def _not_a_report(report: dict) -> str | None:
    """What makes ``report`` no report the pages can draw (``{task: {model: {metric: value}}}`` and ``_``-entries
    that are objects, ``_uploads`` one per photo source), or None."""
    for key, value in report.items():
        if not isinstance(value, dict):
            return f"its entry {str(key)[:40]!r} holds {type(value).__name__}, not an object"
        rows = value.items() if not key.startswith("_") or key == "_uploads" else ()
        bad = next((name for name, row in rows if not isinstance(row, dict)), None)
        if bad is not None:
            return f"its entry {str(key)[:40]!r} has a row {str(bad)[:40]!r} that is not an object"
    return None


def report_unreadable(path: str | os.PathLike) -> bool:
    """True when ``path`` holds no report, or one that cannot be read (empty, a git-lfs pointer, cut short, not a
    JSON object; logged in one line): a report to compute (again). A damaged report is a report not computed."""
    try:
        return read_report(path) is None
    except ValueError as exc:
        logger.warning("%s", exc)
        return True


def row_title(task: str, name: str) -> str:
    """The label of report row ``name`` of ``task``: the model registry's title, or ``name`` itself for a row the
    registry does not know (an old report, a task this version lacks).

    Raises
    ------
    ModuleNotFoundError
        When the task's model module exists but a package it imports is missing (a broken install, not an old
        report).
    """
    try:
        return model_title(task, name)
    except ValueError:  # a task this version does not have
        return name
    except ModuleNotFoundError as exc:
        if exc.name in (f"recsys.tasks.{task}", f"recsys.tasks.{task}.models"):
            return name
        raise


#: A report column ``<metric>_se`` holds the standard error of ``<metric>`` over the test queries.
SE_SUFFIX = "_se"


def _full_table(task_report: dict) -> pd.DataFrame:
    table = pd.DataFrame.from_dict(task_report, orient="index").apply(pd.to_numeric, errors="coerce")
    order = [m for m in table.index if m != ORACLE] + ([ORACLE] if ORACLE in table.index else [])
    return table.loc[order]


def report_table(task_report: dict) -> pd.DataFrame:
    """``{model: {metric: value}}`` as a DataFrame (models as rows, by name), the oracle last; values that are not
    numbers become NaN. Standard-error columns are left out (:func:`standard_errors`)."""
    table = _full_table(task_report)
    return table[[c for c in table.columns if not str(c).endswith(SE_SUFFIX)]]


def standard_errors(task_report: dict) -> pd.DataFrame:
    """The standard errors of :func:`report_table`'s figures, same rows, columns named by their metric (only the
    metrics whose protocol reports one)."""
    table = _full_table(task_report)
    errors = table[[c for c in table.columns if str(c).endswith(SE_SUFFIX)]]
    return errors.rename(columns=lambda c: str(c)[: -len(SE_SUFFIX)])


def display_table(task_report: dict, digits: int = 4) -> pd.DataFrame:
    """:func:`report_table` as text: "value ± standard error" where the protocol gives one, "n/a" for a figure that
    could not be computed, and a count (an integer in the report: users, dialogues) as a whole number."""
    values, errors = report_table(task_report), standard_errors(task_report)
    shown = values.astype(object)
    for column in values.columns:
        for row in values.index:
            value = values.at[row, column]
            raw = task_report.get(row, {}).get(column) if isinstance(task_report.get(row), dict) else None
            if isinstance(raw, (int, np.integer)) and not isinstance(raw, bool):
                shown.at[row, column] = str(int(raw))
                continue
            if not np.isfinite(value):
                shown.at[row, column] = "n/a"
                continue
            text = f"{value:.{digits}f}"
            se = errors.at[row, column] if column in errors.columns else np.nan
            shown.at[row, column] = text + (f" ± {se:.{digits}f}" if np.isfinite(se) else "")
    return shown


def gap_closed(task_report: dict, metric: str) -> dict[str, float]:
    """For each non-baseline model: ``(model - best baseline) / (oracle - best baseline)`` on ``metric``.

    Empty when there is no oracle or no baseline with that metric; figures that were not computed (None, NaN, a
    non-number) are left out, as in every reported mean.
    """
    def figure(row) -> float | None:
        value = row.get(metric) if isinstance(row, dict) else None
        return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None

    oracle = figure(task_report.get(ORACLE, {}))
    baselines = [figure(v) for m, v in task_report.items() if m in BASELINES]
    baselines = [v for v in baselines if v is not None]
    if oracle is None or not baselines:
        return {}
    best = max(baselines)
    if np.isclose(oracle, best):
        return {}
    return {m: (figure(v) - best) / (oracle - best) for m, v in task_report.items()
            if m not in BASELINES and m != ORACLE and figure(v) is not None}


#: What each method claims to improve on, per task: ``(model, the row it should beat, metric)`` -- the question a
#: reader asks of the table (does the paper's idea pay here?). :func:`claims` answers each from the report's figures.
CLAIMS = {
    "compat": (("type-aware", "triplet", "FITB"), ("type-aware", "triplet", "FITB-any")),
    "personal": (("vecf", "vbpr-mm", "NDCG@10"), ("vecf", "vbpr-mm", "detail/NDCG@10"),
                 ("vbpr-mm", "popularity", "NDCG@10")),
    "composed": (("combiner", "zero-shot", "R@10"), ("image-difference", "zero-shot", "R@10")),
    "dialogue": (("dialogue-infonce+compat", "dialogue-infonce", "WKT"), ("dialogue-infonce", "zero-shot", "WKT")),
    # Colour first costs pattern: the loss is claimed as well as the gain.
    "similar": (("shopper-similarity", "visual-similarity", "color@10"),
                ("shopper-similarity", "visual-similarity", "pattern@10")),
}


def pop_paired_claims(task: str, task_report: dict) -> list[dict]:
    """Take every row's per-query figures (:data:`recsys.metrics.PER_QUERY`) out of ``task_report`` (in place: what
    is written is the figures alone) and return the task's :data:`CLAIMS` that both rows have them for, as
    ``{"model", "against", "metric", "difference", "se", "n"}`` with the paired standard error
    (:func:`recsys.metrics.paired_difference`). A claim whose rows were scored on different queries is left out (its
    verdict then falls back to the independent errors, :func:`claims`)."""
    per_query = {name: row.pop(PER_QUERY) for name, row in task_report.items()
                 if isinstance(row, dict) and PER_QUERY in row}
    paired = []
    for model, against, metric in CLAIMS.get(task, ()):
        if metric not in per_query.get(model, {}) or metric not in per_query.get(against, {}):
            continue
        (a, strata), (b, other) = per_query[model][metric], per_query[against][metric]
        same_strata = (strata is None) == (other is None) and (strata is None or np.array_equal(strata, other))
        if np.shape(a) != np.shape(b) or not same_strata:
            logger.warning("%s: %s and %s were scored on different queries; %s is not paired", task, model, against,
                           metric)
            continue
        difference, se, n = metrics.paired_difference(a, b, strata)
        if np.isfinite(difference) and np.isfinite(se):
            paired.append({"model": model, "against": against, "metric": metric, "difference": difference,
                           "se": se, "n": n})
    return paired


def claims(task: str, task_report: dict, paired: list[dict] | None = None) -> list[dict]:
    """Each of the task's :data:`CLAIMS` whose two rows are in the report with standard errors:
    ``{"model", "against", "metric", "difference", "se", "detectable", "paired", "verdict"}``. The error is the paired one where
    ``paired`` (:func:`pop_paired_claims`, saved as the report's ``_paired``) has the claim -- both rows scored on the
    same queries -- else sqrt(se_model^2 + se_against^2), the two figures treated as independent (which overstates
    the error of a difference on shared queries). ``verdict`` is "better" / "worse" when the difference passes two
    standard errors either way, else "not told apart"; ``detectable`` (2 x ``se``) is the smallest difference this test
    could have told apart either way -- the power statement a tie needs (a tie with a small ``detectable`` says the
    two are close; with a large one, that the questions were too few to tell)."""
    values, errors = report_table(task_report), standard_errors(task_report)
    known = {(c["model"], c["against"], c["metric"]): c for c in paired or ()}
    found = []
    for model, against, metric in CLAIMS.get(task, ()):
        if model not in values.index or against not in values.index or metric not in errors.columns:
            continue
        difference = values.at[model, metric] - values.at[against, metric]
        se = float(np.hypot(errors.at[model, metric], errors.at[against, metric]))
        pair = known.get((model, against, metric))
        if pair is not None:
            difference, se = pair["difference"], pair["se"]
        if not (np.isfinite(difference) and np.isfinite(se)):
            continue
        verdict = "better" if difference > 2 * se else "worse" if difference < -2 * se else "not told apart"
        found.append({"model": model, "against": against, "metric": metric, "difference": float(difference),
                      "se": float(se), "detectable": float(2 * se), "paired": pair is not None,
                      "verdict": verdict})
    return found


def claim_sentence(claim: dict, titles: dict | None = None) -> str:
    """A claim of :func:`claims` as one markdown sentence: the two rows (by ``titles`` where given), the metric, the
    difference ± its standard error and the verdict, with what a tie or a loss means; a tie says the smallest
    difference the test could have detected (two standard errors), so that a reader can tell "close" from "too few
    questions"."""
    titles = titles or {}
    text = (f"**{titles.get(claim['model'], claim['model'])}** against {titles.get(claim['against'], claim['against'])} "
            f"on {claim['metric']}: {claim['difference']:+.4f} ± {claim['se']:.4f}"
            f"{' (paired over the same queries)' if claim.get('paired') else ''} -- **{claim['verdict']}**")
    if claim["verdict"] == "not told apart" and claim["se"] == 0 and claim["difference"] == 0:
        # Both rows scored the same on every query (e.g. zero on each): no spread to size a detectable difference.
        return text + " (the two scored the same on every query: this test cannot tell them apart at all)"
    if claim["verdict"] == "not told apart":
        detectable = claim.get("detectable", 2 * claim["se"])
        return text + (f" (within two standard errors: on this catalog the method does not show its gain; the test "
                       f"could detect a difference of {detectable:.4f} or more either way)")
    if claim["verdict"] == "worse":
        return text + " (a loss is a result: the method does not pay here)"
    return text


def catalog_claims(catalog_root: str | os.PathLike, task: str) -> list[str]:
    """The task's :func:`claim_sentence` s from the catalog's saved report (rows by their titles), for the task's
    page; empty when the catalog has no readable report or the report lacks the task."""
    try:
        report = read_report(report_path(catalog_root))
    except ValueError:
        return []
    if not report or not isinstance(report.get(task), dict):
        return []
    return [claim_sentence(c, {name: row_title(task, name) for name in (c["model"], c["against"])})
            for c in claims(task, report[task], (report.get(PAIRED) or {}).get(task))]


#: The upload protocol's figures, as the report's columns.
UPLOAD_FIGURES = ("category_accuracy", "category@5", "colour_accuracy", "colour@5", "category_sure",
                  "category_accuracy_sure", "category_wrong_sure", "category_top3")


def upload_table(uploads: dict) -> pd.DataFrame:
    """One row per photo source of the report's ``_uploads``: ``n``, then each of :data:`UPLOAD_FIGURES` as
    "value ± standard error (chance c)" text, "n/a" where the source gave no such label."""
    rows = {}
    for source, figures in uploads.items():
        row = {"photos": figures.get("n")}
        for name in UPLOAD_FIGURES:
            value, se, chance = figures.get(name), figures.get(f"{name}_se"), figures.get(f"{name}_chance")
            if value is None:
                row[name] = "n/a"
                continue
            text = f"{value:.3f}" + (f" ± {se:.3f}" if se is not None else "")
            row[name] = text + (f" (chance {chance:.3f})" if chance is not None else "")
        rows[source] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def upload_confusion_table(figures: dict) -> pd.DataFrame:
    """Per photo label of one upload source (rows), how many photos the page read as each catalog category
    (columns, most read first), with the share read into a category the label accepts when known ("right")."""
    confusion = figures.get("confusion") or {}
    columns = sorted({c for row in confusion.values() for c in row},
                     key=lambda c: -sum(row.get(c, 0) for row in confusion.values()))
    table = pd.DataFrame([[row.get(c, 0) for c in columns] for row in confusion.values()],
                         index=list(confusion), columns=columns, dtype="int64")
    table.index.name = "photo label"
    return table


def upload_calibration_table(figures: dict) -> pd.DataFrame:
    """The reliability table of one upload source: per stated-confidence bin, photos, mean confidence and the share
    whose category was right (a calibrated reader has the two close)."""
    rows = [{"confidence bin": f"{r['lo']:.1f}-{r['hi']:.1f}", "photos": r["n"],
             "mean confidence": None if r["confidence"] is None else round(r["confidence"], 3),
             "right": None if r["accuracy"] is None else round(r["accuracy"], 3)}
            for r in figures.get("calibration") or []]
    return pd.DataFrame(rows, columns=["confidence bin", "photos", "mean confidence", "right"])


def requests_table(requests: dict) -> pd.DataFrame:
    """One row per requests file, kind and row of the report's ``_requests`` (:mod:`recsys.request_protocol`):
    ``n``, the score as "value ± standard error" and the chance level, rows labelled with the registry's titles
    (the composed task's for search and captions, the dialogue task's for the Stylist)."""
    alone = " (model alone)"
    rows = []
    for source, kinds in requests.items():
        for kind, figures in kinds.items():
            if kind.startswith("_") or not isinstance(figures, dict):
                continue
            task = "dialogue" if kind == "stylist" else "composed"
            for row, f in figures.items():
                if row.startswith("_") or not isinstance(f, dict):
                    continue
                name = row[: -len(alone)] if row.endswith(alone) else row
                score, se = f.get("score"), f.get("score_se")
                rows.append({"requests": source, "kind": kind,
                             "model": row_title(task, name) + (alone if row.endswith(alone) else " (as the page runs it)"),
                             "n": f.get("n"),
                             "score": "n/a" if score is None else f"{score:.3f}" + (f" ± {se:.3f}" if se is not None else ""),
                             "chance": "n/a" if f.get("chance") is None else f"{f['chance']:.3f}"})
    return pd.DataFrame(rows)
