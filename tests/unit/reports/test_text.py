"""Readable text of the analyses."""

from __future__ import annotations

from monitor.reports.text import duration, event_days, local_label, render_backtest, render_recommend, table


def test_table_pads_columns_to_the_widest_cell():
    out = table(["name", "n"], [["a", 1], ["long name", 1234]]).splitlines()
    assert out == ["name         n", "--------------", "a            1", "long name 1234"]


def test_local_labels_and_durations():
    assert local_label("2026-03-29T22:00:00Z", "Europe/Berlin") == "2026-03-30 Mon"
    assert local_label("2026-03-29T22:30:00Z", "Europe/Berlin") == "2026-03-30 00:30"
    assert [duration(x) for x in (None, 59, 90, 7200, 172800)] == ["-", "59.0s", "1.5m", "2.0h", "2.0d"]
    assert event_days(0, 86_400_000_000 * 3) == 3.0 and event_days(None, 5) == 0.0


def side(normal, total):
    return {"total": total, "rates": {"normal": normal, "acceptable": 0.0, "warning": 0.0}}


def test_backtest_text_has_attainment_before_and_after_and_warnings_per_day():
    doc = {"now": "2026-03-11T00:00:00Z", "rows": [
        {"process": "p", "node": "a", "current": side(0.5, 10), "candidate": side(0.8, 10),
         "warnings": {"current": {"approaching": 0, "commitment_breached": 6, "tolerance_breached": 2},
                      "candidate": {"approaching": 0, "commitment_breached": 2, "tolerance_breached": 0}},
         "changed_runs": 3},
        {"process": "p", "node": "c", "current": None, "candidate": side(1.0, 1),
         "warnings": {"current": {"approaching": 0, "commitment_breached": 0, "tolerance_breached": 0},
                      "candidate": {"approaching": 0, "commitment_breached": 0, "tolerance_breached": 0}},
         "changed_runs": 1}],
        "changed": [{"order_id": "o1", "node": "c", "run": 1, "current": None, "candidate": "completed_normal"}]}
    text = render_backtest(doc, 2.0, ({"unknown_node": 2}, {}))
    a = next(line for line in text.splitlines() if line.startswith("p ") and " a " in line).split()
    assert a[2:] == ["10", "10", "50.0%", "80.0%", "4.0", "1.0", "-3.0", "3"]  # 8 and 2 crossings over 2 days
    c = next(line for line in text.splitlines() if line.startswith("p ") and " c " in line).split()
    assert c[2:5] == ["0", "1", "-"]
    assert "4 run(s) change state" in text and "o1" in text
    assert "Invalid events (current): unknown_node 2" in text and "Invalid events (candidate): none" in text


def test_recommend_text_lists_rows_and_skipped():
    limits = {"commitment_s": 600.0, "tolerance_s": 3600.0, "attainment": 0.5, "tolerance_attainment": 0.9}
    doc = {"now": "x", "target": 0.9, "tolerance_target": 0.975,
           "rows": [{"process": "p", "node": "a", "segment": "gold", "runs": 40, "current": limits,
                     "recommended": {**limits, "commitment_s": 1200.0, "attainment": 0.91}}],
           "skipped": [{"process": "p", "node": "b", "segment": None, "runs": 3}]}
    text = render_recommend(doc)
    assert "90.0% within commitment and 97.5% within tolerance" in text
    row = next(line for line in text.splitlines() if line.startswith("p ") and " gold " in line).split()
    assert row[3:] == ["40", "10.0m", "1.0h", "50.0%", "90.0%", "20.0m", "1.0h", "91.0%", "90.0%"]
    assert text.rstrip().splitlines()[-1].split() == ["p", "b", "3"]
