"""The report's charts: attainment per process pooled over its nodes (the order level apart), bottlenecks by p90."""

from __future__ import annotations

import re

from monitor.reports.charts import attainment_chart, attainment_series, bottleneck_chart

STATES = ("completed_normal", "completed_acceptable", "completed_warning", "in_progress_normal",
          "in_progress_acceptable", "in_progress_warning", "cancelled")


def row(process, node, p90=None, **counts):
    c = dict.fromkeys(STATES, 0)
    c.update(counts)
    n = 1 if p90 is not None else 0
    return {"process": process, "node": node, **c, "total": sum(c.values()),
            "duration_s": {"count": n, "mean": p90, "min": p90, "max": p90, "p50": p90, "p90": p90}}


DOC = {"periods": [
    {"summary": [row("p", "a", completed_normal=3, completed_warning=1), row("p", "b", in_progress_normal=1,
                                                                          cancelled=5),
                 row("p", "__order__", completed_acceptable=2)]},
    {"summary": [row("q", "x", cancelled=2)]},
    {"summary": [row("p", "a", 50.0, completed_normal=1), row("p", "b", 3600.0, completed_warning=1),
                 row("p", "__order__", 99999.0, completed_normal=1), row("q", "x", 10.0, completed_normal=1)]},
]}


def test_attainment_pools_the_nodes_of_a_process_and_keeps_the_order_level_apart():
    assert attainment_series(DOC) == {
        "p": [4 / 5, None, 1 / 2],  # (3 + 1) normal of 5 judged (cancelled left out); none in period 2
        "p (order)": [0.0, None, 1.0],
        "q": [None, None, 1.0],  # only cancelled runs: no attainment
    }


def test_the_line_chart_breaks_where_there_is_no_value():
    svg = attainment_chart(["d1", "d2", "d3"], attainment_series(DOC))
    assert svg.count("<polyline") == 0  # every series has a gap between its only points
    assert svg.count("<circle") == 2 + 2 + 1
    svg = attainment_chart(["d1", "d2"], {"p": [0.5, 1.0]})
    assert len(re.findall(r"<polyline points=\"([^\"]+)\"", svg)[0].split()) == 2


def test_bottlenecks_rank_nodes_by_p90_without_the_order_level():
    svg = bottleneck_chart(DOC["periods"][2]["summary"])
    labels = re.findall(r">(\d+\. [^<]+)</text>", svg)
    assert labels == ["1. p / b", "2. p / a", "3. q / x"]
    assert "No completed node runs" in bottleneck_chart(DOC["periods"][1]["summary"])
