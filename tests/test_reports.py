import pytest

from recsys.reports import gap_closed, report_table


def test_gap_closed_by_hand():
    report = {"random": {"FITB": 0.25}, "visual-similarity": {"FITB": 0.35}, "type-aware": {"FITB": 0.65},
              "oracle": {"FITB": 0.85}}
    # best baseline 0.35, oracle 0.85: (0.65 - 0.35) / 0.5 = 0.6
    closed = gap_closed(report, "FITB")
    assert set(closed) == {"type-aware"} and abs(closed["type-aware"] - 0.6) < 1e-9
    assert gap_closed({"random": {"x": 1.0}}, "x") == {}
    table = report_table(report)
    assert list(table.index)[-1] == "oracle" and table.loc["type-aware", "FITB"] == 0.65


def test_upload_figures_read_as_value_error_and_chance():
    from recsys.reports import upload_table

    table = upload_table({"validation": {"n": 40, "category_accuracy": 0.5, "category_accuracy_se": 0.08,
                                         "category_accuracy_chance": 0.1, "category@5": 0.5, "category@5_se": 0.08,
                                         "category@5_chance": 0.11, "colour_accuracy": None}})
    assert table.loc["validation", "photos"] == 40
    assert table.loc["validation", "category_accuracy"] == "0.500 ± 0.080 (chance 0.100)"
    assert table.loc["validation", "colour_accuracy"] == "n/a" and table.loc["validation", "colour@5"] == "n/a"


def test_gap_closed_leaves_out_figures_that_were_not_computed():
    report = {"random": {"FITB": 0.25}, "popularity": {"FITB": None}, "oracle": {"FITB": 0.75},
              "m": {"FITB": 0.5}, "n": {"FITB": float("nan")}, "o": {"FITB": None}}
    assert gap_closed(report, "FITB") == {"m": 0.5}
    assert gap_closed({"random": {"FITB": 0.25}, "oracle": {"FITB": None}, "m": {"FITB": 0.5}}, "FITB") == {}


def test_standard_errors_sit_beside_their_figures():
    from recsys.reports import display_table, standard_errors

    report = {"triplet": {"FITB": 0.6439, "FITB_se": 0.0288, "AUC": 0.9441, "questions": 470},
              "oracle": {"FITB": 0.7338, "FITB_se": 0.0266, "AUC": None, "questions": 470}}
    assert list(report_table(report).columns) == ["FITB", "AUC", "questions"]  # the SE is not a metric of its own
    assert standard_errors(report).loc["oracle", "FITB"] == 0.0266
    shown = display_table(report)
    assert shown.loc["triplet", "FITB"] == "0.6439 ± 0.0288"
    assert shown.loc["triplet", "AUC"] == "0.9441"  # no SE reported: the value alone
    assert shown.loc["oracle", "AUC"] == "n/a"
    assert shown.loc["oracle", "questions"] == "470"  # a count, not "470.0000"


def test_a_page_reads_its_tasks_claims_from_the_catalogs_report(tmp_path):
    import json

    from recsys.reports import catalog_claims

    assert catalog_claims(tmp_path, "composed") == []  # no report yet
    (tmp_path / "artifacts").mkdir()
    report = {"composed": {"zero-shot": {"R@10": 0.685, "R@10_se": 0.057},
                           "combiner": {"R@10": 0.915, "R@10_se": 0.022},
                           "image-difference": {"R@10": 0.49, "R@10_se": 0.05}}}
    (tmp_path / "artifacts" / "report.json").write_text(json.dumps(report), encoding="utf-8")
    better, worse = catalog_claims(tmp_path, "composed")
    # 0.915 - 0.685 = +0.23 against sqrt(0.057^2 + 0.022^2) = 0.0611; 0.49 - 0.685 = -0.195 against 0.0758.
    assert better.startswith("**Learned combiner (CLIP4Cir-style)** against Zero-shot sum of image and caption on R@10")
    assert "+0.2300 ± 0.0611 -- **better**" in better
    assert "-0.1950 ± 0.0758 -- **worse** (a loss is a result" in worse
    assert catalog_claims(tmp_path, "compat") == []  # the report lacks the task
    (tmp_path / "artifacts" / "report.json").write_text("{not json", encoding="utf-8")
    assert catalog_claims(tmp_path, "composed") == []  # an unreadable report: the page goes on without its claims


def test_claims_say_whether_a_method_beats_what_it_improves_on():
    from recsys.reports import claim_sentence, claims

    report = {"triplet": {"FITB": 0.7617, "FITB_se": 0.0197}, "type-aware": {"FITB": 0.7596, "FITB_se": 0.0197}}
    (claim,) = claims("compat", report)
    assert claim["model"] == "type-aware" and claim["against"] == "triplet"
    assert claim["difference"] == pytest.approx(-0.0021) and claim["se"] == pytest.approx(0.0197 * 2**0.5)
    assert claim["verdict"] == "not told apart"
    # The power statement: two errors of the difference, 2 x sqrt(2) x 0.0197 = 0.0557.
    assert claim["detectable"] == pytest.approx(2 * 0.0197 * 2**0.5)
    assert claim_sentence(claim).endswith("-- **not told apart** (within two standard errors: on this catalog the "
                                          "method does not show its gain; the test could detect a difference of "
                                          "0.0557 or more either way)")
    report["type-aware"]["FITB"] = 0.85  # 0.088 above, past 2 x 0.0279
    assert claims("compat", report)[0]["verdict"] == "better"
    report["type-aware"]["FITB"] = 0.70
    assert claims("compat", report)[0]["verdict"] == "worse"
    assert claims("compat", {"triplet": {"FITB": 0.7}}) == []  # a row or its error missing: no claim


def test_claims_on_shared_queries_use_the_paired_error():
    import numpy as np

    from recsys.metrics import PER_QUERY
    from recsys.reports import claims, pop_paired_claims

    # 100 FITB questions: the type-aware model answers every question the triplet one does, and four more.
    triplet = np.tile([1.0, 0.0], 50)
    aware = triplet.copy()
    aware[[1, 3, 5, 7]] = 1.0
    report = {name: {"FITB": hits.mean(), "FITB_se": hits.std(ddof=1) / 10, PER_QUERY: {"FITB": (hits, None)}}
              for name, hits in (("triplet", triplet), ("type-aware", aware))}
    paired = pop_paired_claims("compat", report)
    assert all(PER_QUERY not in row for row in report.values())  # the report keeps its figures only
    # Differences: four 1s in 100 -> mean 0.04, SE sqrt(0.04 * 0.96 * 100 / 99) / 10 = 0.01969.
    assert paired == [{"model": "type-aware", "against": "triplet", "metric": "FITB",
                       "difference": pytest.approx(0.04), "se": pytest.approx(np.sqrt(0.04 * 0.96 * 100 / 99) / 10),
                       "n": 100}]
    (claim,) = claims("compat", report, paired)
    assert claim["paired"] and claim["verdict"] == "better"  # 0.04 > 2 x 0.0197
    assert claim["detectable"] == pytest.approx(2 * np.sqrt(0.04 * 0.96 * 100 / 99) / 10)  # 0.0394
    # The same figures treated as independent (SEs 0.0503 and 0.0498): not told apart.
    (independent,) = claims("compat", report)
    assert not independent["paired"] and independent["verdict"] == "not told apart"
    # Rows scored on different queries are not paired.
    report = {"triplet": {"FITB": 0.5, "FITB_se": 0.05, PER_QUERY: {"FITB": (triplet, None)}},
              "type-aware": {"FITB": 0.5, "FITB_se": 0.05, PER_QUERY: {"FITB": (triplet[:50], None)}}}
    assert pop_paired_claims("compat", report) == []


def test_the_upload_confusion_and_calibration_tables():
    from recsys.reports import upload_calibration_table, upload_confusion_table

    figures = {"confusion": {"pants": {"trousers": 9, "shorts": 1}, "shoes": {"sneakers": 5}},
               "calibration": [{"lo": 0.0, "hi": 0.5, "n": 0, "confidence": None, "accuracy": None},
                               {"lo": 0.5, "hi": 1.0, "n": 15, "confidence": 0.8123, "accuracy": 0.9333}]}
    confusion = upload_confusion_table(figures)
    assert list(confusion.columns) == ["trousers", "sneakers", "shorts"]  # most read first
    assert confusion.loc["pants", "trousers"] == 9 and confusion.loc["shoes", "shorts"] == 0
    calibration = upload_calibration_table(figures)
    assert calibration.to_dict("records")[1] == {"confidence bin": "0.5-1.0", "photos": 15, "mean confidence": 0.812,
                                                 "right": 0.933}
    assert upload_confusion_table({}).empty and upload_calibration_table({}).empty


def test_the_printed_report_gives_each_verdict_with_its_power():
    from _scripts import load_script

    format_report = load_script("evaluate").format_report
    report = {"compat": {"triplet": {"FITB": 0.7617, "FITB_se": 0.0197}, "type-aware": {"FITB": 0.7596,
                                                                                       "FITB_se": 0.0197}}}
    text = format_report(report)
    # -0.0021 against sqrt(2) x 0.0197 = 0.0279: a tie, with the 0.0557 the test could have seen.
    assert ("type-aware against triplet on FITB: -0.0021 ± 0.0279 -- not told apart (within two standard errors: on "
            "this catalog the method does not show its gain; the test could detect a difference of 0.0557 or more "
            "either way)") in text.splitlines()


def test_a_tie_with_no_spread_says_the_test_cannot_tell_at_all():
    from recsys.reports import claim_sentence

    # Both rows at zero on every detail user (a quick schedule's VECF and VBPR): "could detect 0.0000" would mislead.
    claim = {"model": "vecf", "against": "vbpr-mm", "metric": "NDCG@10", "difference": 0.0, "se": 0.0,
             "paired": True, "verdict": "not told apart"}
    assert claim_sentence(claim).endswith("(the two scored the same on every query: this test cannot tell them apart "
                                          "at all)")
    assert "could detect a difference of 0.0100" in claim_sentence(claim | {"difference": 0.001, "se": 0.005})
