"""The Model report page, driven headlessly with Streamlit's AppTest on a copy of the tiny world."""

from __future__ import annotations

import json
import shutil

import pytest

from _pages import open_page

from recsys.reports import REPORT_NAME, ROW_NOTES, row_title

PAGE = "pages/report.py"
PERSONAL = {
    "random": {"AUC": 0.5, "NDCG@10": 0.002},
    "popularity": {"AUC": 0.65, "NDCG@10": 0.005},
    "vbpr-mm": {"AUC": 0.72, "NDCG@10": 0.010},
    "vbpr-attributes": {"AUC": 0.75, "NDCG@10": 0.016},
    "oracle": {"AUC": 0.86, "NDCG@10": 0.069},
}


@pytest.fixture
def catalog_copy(tiny_catalog_dir, tmp_path):
    folder = tmp_path / "world"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("artifacts"))
    (folder / "artifacts").mkdir()
    return folder



def test_report_shows_the_table_the_gap_closed_and_what_the_ceiling_row_is(monkeypatch, catalog_copy):
    (catalog_copy / "artifacts" / REPORT_NAME).write_text(json.dumps({"personal": PERSONAL}))
    app = open_page(monkeypatch, catalog_copy, PAGE)
    assert app.title[0].value == "Model report"
    table = app.dataframe[0].value
    # Rows are labelled by the model registry, in the report's order with the oracle last.
    titles = [row_title("personal", name) for name in PERSONAL]
    assert list(table.index) == titles
    gap = next(m.value for m in app.markdown if m.value.startswith("**Share of the gap"))
    # AUC: (0.72 - 0.65) / (0.86 - 0.65) = 33%, the best baseline being popularity.
    assert f"{row_title('personal', 'vbpr-mm')} 33%" in gap
    captions = [c.value for c in app.caption]
    assert ROW_NOTES["personal", "vbpr-attributes"] in captions
    assert ROW_NOTES["compat", "oracle"] not in captions  # a note is the task's: this tab is For you's
    assert f"Baselines: {row_title('personal', 'random')}, {row_title('personal', 'popularity')}." in captions


def test_rows_take_their_titles_from_the_model_registry():
    from recsys.models.registry import model_title

    assert row_title("similar", "oracle") == model_title("similar", "oracle") != "oracle"
    assert row_title("similar", "not-a-model") == "not-a-model"
    assert row_title("no-such-task", "random") == "random"


def test_missing_and_unreadable_reports_get_one_sentence(monkeypatch, catalog_copy):
    report = catalog_copy / "artifacts" / REPORT_NAME
    report.unlink(missing_ok=True)
    app = open_page(monkeypatch, catalog_copy, PAGE)
    assert any("No evaluation report" in i.value and "scripts/" not in i.value for i in app.info)
    assert [b.label for b in app.button if b.key == "report_setup"] == ["Compute the report"]
    report.write_text("{not json")  # a damaged report is a report not computed: one sentence, and the way to compute it
    app = open_page(monkeypatch, catalog_copy, PAGE)
    assert any("cannot be read" in w.value for w in app.warning) and not app.exception
    assert [b.label for b in app.button if b.key == "report_setup"] == ["Compute the report"]


def test_figures_of_uploaded_photos_get_their_own_table(monkeypatch, catalog_copy):
    uploads = {"validation": {"n": 341, "category_accuracy": 0.54, "category_accuracy_se": 0.027,
                              "category_accuracy_chance": 0.103, "colour_accuracy": None}}
    (catalog_copy / "artifacts" / REPORT_NAME).write_text(json.dumps({"personal": PERSONAL, "_uploads": uploads}))
    app = open_page(monkeypatch, catalog_copy, PAGE)
    assert [s.value for s in app.subheader][:1] == ["Real photos uploaded to this catalog"]
    table = app.dataframe[-1].value
    assert table.loc["validation", "category_accuracy"] == "0.540 ± 0.027 (chance 0.103)"
    assert [t.label for t in app.tabs] == ["Personal"]  # the photos are not a task tab


def test_a_figure_that_could_not_be_computed_reads_n_a_and_leaves_the_gap_to_the_others(monkeypatch, catalog_copy):
    # What the dialogue protocol writes when no evaluation dialogue of a row could be scored: a null mean.
    dialogue = {"random": {"WKT": None, "top1_acc": 0.3, "undefined": 2},
                "dialogue-infonce": {"WKT": 0.4, "top1_acc": 0.65, "undefined": 0},
                "oracle": {"WKT": 1.0, "top1_acc": 1.0, "undefined": 0}}
    (catalog_copy / "artifacts" / REPORT_NAME).write_text(json.dumps({"dialogue": dialogue}))
    app = open_page(monkeypatch, catalog_copy, PAGE)
    table = app.dataframe[0].value
    assert (table == "n/a").to_numpy().sum() == 1 and table["WKT"].tolist() == ["n/a", "0.4000", "1.0000"]
    assert any(c.value.startswith("n/a: a figure that could not be computed") for c in app.caption)
    # WKT: the only baseline has no figure, so no gap is claimed
    assert not any(m.value.startswith("**Share of the gap") for m in app.markdown)
    app.selectbox(key="report_metric_dialogue").set_value("top1_acc").run()
    assert not app.exception, [e.value for e in app.exception]
    gap = next(m.value for m in app.markdown if m.value.startswith("**Share of the gap"))
    assert f"{row_title('dialogue', 'dialogue-infonce')} 50%" in gap  # (0.65 - 0.3) / (1.0 - 0.3)


def test_figures_read_with_their_standard_errors_and_the_papers_figures_beside(monkeypatch, catalog_copy):
    from recsys.papers import paper_figures

    personal = {name: dict(figures, **{"AUC_se": 0.004, "NDCG@10_se": 0.002}) for name, figures in PERSONAL.items()}
    (catalog_copy / "artifacts" / REPORT_NAME).write_text(json.dumps({"personal": personal}))
    app = open_page(monkeypatch, catalog_copy, PAGE)
    table = app.dataframe[0].value
    assert table.loc[row_title("personal", "vbpr-mm"), "AUC"] == "0.7200 ± 0.0040"
    assert table.loc[row_title("personal", "vbpr-mm"), "NDCG@10"] == "0.0100 ± 0.0020"
    assert "AUC_se" not in table.columns
    papers = app.dataframe[1].value
    assert len(papers) == len(paper_figures("personal")) > 0
    assert set(papers["row"]) <= {row_title("personal", f.row) for f in paper_figures("personal")}
    assert any(m.value == "**What the papers reported (other data)**" for m in app.markdown)
    # VBPR against popularity on NDCG@10: 0.010 - 0.005 = +0.005 with a standard error of sqrt(2) x 0.002.
    claim = next(m.value for m in app.markdown if m.value.startswith(f"**{row_title('personal', 'vbpr-mm')}** against"))
    assert "+0.0050 ± 0.0028 -- **not told apart**" in claim
    assert claim.endswith("the test could detect a difference of 0.0057 or more either way)")  # 2 x 0.0028


def test_uploaded_photos_show_their_confusion_and_calibration_and_the_bench_hint_names_this_file(monkeypatch,
                                                                                               catalog_copy):
    uploads = {"validation": {"n": 3, "category_accuracy": 2 / 3, "category_accuracy_se": 0.33,
                              "confusion": {"pants": {"trousers": 2}, "shoes": {"boots": 1}},
                              "calibration": [{"lo": 0.0, "hi": 0.6, "n": 1, "confidence": 0.4, "accuracy": 0.0},
                                              {"lo": 0.6, "hi": 1.0, "n": 2, "confidence": 0.9, "accuracy": 1.0}],
                              "calibration_error": 0.233}}
    (catalog_copy / "artifacts" / REPORT_NAME).write_text(json.dumps({"personal": PERSONAL, "_uploads": uploads}))
    app = open_page(monkeypatch, catalog_copy, PAGE)
    assert any("what each photo label was read as" in e.label for e in app.expander)
    frames = [d.value for d in app.dataframe]
    assert any("trousers" in f.columns and f.loc["pants", "trousers"] == 2 for f in frames if "trousers" in f.columns)
    assert any(list(f.columns) == ["confidence bin", "photos", "mean confidence", "right"] for f in frames)
    assert any("expected calibration error 0.233" in c.value for c in app.caption)
    hint = [c.value for c in app.caption if c.value.startswith("No benchmark figures")]
    assert hint and f'--json {catalog_copy / "artifacts" / "bench.json"}' in hint[0]
