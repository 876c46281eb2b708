"""The CSV of a period report: one line per (period, row), read back equal to the JSON document."""

from __future__ import annotations

import csv
import io

import pytest

from monitor.core.policies import load_policy_dir
from monitor.eventlog import read_events
from monitor.reports.analyses import period_report
from monitor.reports.csvfile import report_csv

from ..runs_oracle import generate, write_events, write_policies

STATES = ("completed_normal", "completed_acceptable", "completed_warning", "in_progress_normal",
          "in_progress_acceptable", "in_progress_warning", "cancelled")


@pytest.mark.parametrize("by_segment", [False, True])
def test_one_line_per_period_and_row_with_the_document_values(tmp_path, by_segment):
    policies, _ = load_policy_dir(write_policies(tmp_path / "policies"))
    path = str(write_events(tmp_path / "events.jsonl", generate(12, orders=90)))
    doc, _ = period_report(policies, lambda: read_events(path), "day", "Europe/Berlin", by_segment=by_segment)
    lines = list(csv.DictReader(io.StringIO(report_csv(doc))))
    expected = [(p, r) for p in doc["periods"] for r in p["summary"]]
    assert len(lines) == len(expected) > 10
    for line, (p, r) in zip(lines, expected, strict=True):
        assert (line["period_start"], line["period_end"], line["judged_at"]) == (p["start"], p["end"], p["judged_at"])
        assert (line["process"], line["node"]) == (r["process"], r["node"])
        assert ("segment" in line) == by_segment and (not by_segment or line["segment"] == r["segment"])
        assert {s: int(line[s]) for s in STATES} == {s: r[s] for s in STATES} and int(line["total"]) == r["total"]
        for k in ("normal", "acceptable", "warning"):
            value = r["rates"][k]
            assert line[f"rate_{k}"] == ("" if value is None else repr(value))
        assert line["flag"] == (r["flag"] or "")
        d = r["duration_s"]
        assert int(line["duration_count"]) == d["count"]
        for k in ("mean", "min", "max", "p50", "p90"):
            assert (float(line[f"duration_{k}_s"]) if line[f"duration_{k}_s"] else None) == d[k]
