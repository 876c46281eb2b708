"""The recording rules: names follow level:metric:operations, and every report window is recorded at every
aggregation."""

from __future__ import annotations

import re

from monitor.rules import AGGREGATIONS, REPORT_WINDOWS, recorded_names, recording_groups


def test_recording_rule_names_follow_the_level_metric_operations_convention():
    rules = [r for g in recording_groups() for r in g["rules"]]
    names = recorded_names()
    for r in rules:
        level, metric, op = r["record"].split(":")
        assert re.fullmatch(r"(increase|ratio)_\d+[mhd]", op), r["record"]
        assert metric.startswith("sla_")
        labels = level.split("_")
        m = re.search(r"sum by \(([^)]*)\)", r["expr"])
        assert m and [x.strip() for x in m.group(1).split(",")] == labels, r
        assert r["expr"].count("increase(") <= 1 and ("increase(" not in r["expr"] or r["expr"].startswith(
            "sum by")), "increase() first, then sum"
    for w in REPORT_WINDOWS:
        for level in AGGREGATIONS:
            for metric in ("sla_commitment_attainment", "sla_tolerance_attainment", "sla_breach_rate",
                           "sla_cancellation_rate"):
                assert f"{level}:{metric}:ratio_{w}" in names
            assert f"{level}:sla_runs_completed:increase_{w}" in names
