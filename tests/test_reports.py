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
