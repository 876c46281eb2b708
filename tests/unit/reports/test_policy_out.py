"""`slamon recommend --out DIR`: a complete policy directory that `slamon policy check` accepts, whose backtest
reaches the attainment the recommendation projected."""

from __future__ import annotations

import pytest
import yaml

from monitor.cli import main as slamon
from monitor.core.policies import load_policy_dir
from monitor.eventlog import read_events
from monitor.reports.analyses import backtest, recommend
from monitor.reports.policy_out import OutError, write_policy_dir

from ..runs_oracle import POLICY_YAML, generate, write_events, write_policies

OTHER = """# a process without events: its file is copied as it is
process: q
calendar: office
nodes:
  only: {commitment: 1h, tolerance: 2h}
"""
CALENDARS = """calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"]}
    holidays: ["2026-03-10"]
"""


@pytest.fixture
def source(tmp_path):
    root = write_policies(tmp_path / "policies")
    (root / "q.yaml").write_text(OTHER)
    (root / "calendars.yaml").write_text(CALENDARS)
    (root / "NOTES.txt").write_text("kept as it is\n")
    return root


@pytest.mark.parametrize("by_segment", [False, True])
def test_out_passes_policy_check_and_a_backtest_reaches_the_projected_attainment(tmp_path, source, capsys, by_segment):
    events = str(write_events(tmp_path / "events.jsonl", generate(21, orders=300)))
    out = tmp_path / "next"
    assert slamon(["recommend", "--policies", str(source), "--events", events, "--target", "0.85", "--min-runs", "20",
                   "--json", "--out", str(out)] + (["--by-segment"] if by_segment else [])) == 0
    import orjson

    doc = orjson.loads(capsys.readouterr().out)
    assert doc["rows"]
    assert slamon(["policy", "check", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["NOTES.txt", "calendars.yaml", "p.yaml", "q.yaml"]
    for name in ("NOTES.txt", "calendars.yaml", "q.yaml"):  # unchanged files are copied byte for byte
        assert (out / name).read_bytes() == (source / name).read_bytes()
    written = yaml.safe_load((out / "p.yaml").read_text())
    original = yaml.safe_load(POLICY_YAML)
    assert written["version"] == original["version"] + 1
    assert written["order"]["owner"] == "desk" and written["nodes"]["a"]["owner"] == "ops"
    assert written["segments"]["gold"]["a"]["owner"] == "gold-desk"
    current, _ = load_policy_dir(source)
    candidate, _ = load_policy_dir(out)
    policy = candidate.get("p")
    for r in doc["rows"]:  # the limits in force under the new set are the recommended ones
        lim = policy.order if r["node"] == "__order__" else policy.limits(r["node"], r["segment"] or "default")
        assert (lim.commitment / 1e6, lim.tolerance / 1e6) == (r["recommended"]["commitment_s"],
                                                               r["recommended"]["tolerance_s"])
    if by_segment:
        return
    compared, _, _ = backtest(current, candidate, lambda: read_events(events))
    rows = {r["node"]: r for r in compared["rows"]}
    for r in doc["rows"]:
        if r["node"] == "a":
            continue  # its gold segment keeps its own commitment: the projection pooled every segment
        # the backtest counts open runs within the limit as normal too: it can only be at or above the projection
        assert rows[r["node"]]["candidate"]["rates"]["normal"] >= r["recommended"]["attainment"] >= 0.85


def test_a_segment_left_invalid_by_a_new_node_limit_keeps_its_old_limits(tmp_path):
    source = write_policies(tmp_path / "policies", """process: p
nodes:
  a: {commitment: 10m, tolerance: 4h}
  b: {commitment: 30m, tolerance: 30m}
segments:
  slow:
    a: {commitment: 2h}
  fast:
    a: {commitment: 5m}
""")
    policies, _ = load_policy_dir(source)
    rows = [{"process": "p", "node": "a", "segment": None,
             "recommended": {"commitment_s": 600.0, "tolerance_s": 3600.0}}]
    assert write_policy_dir(str(source), str(tmp_path / "out"), policies, rows) == ["p.yaml"]
    written, _ = load_policy_dir(tmp_path / "out")
    p = written.get("p")
    assert (p.limits("a", "slow").commitment, p.limits("a", "slow").tolerance) == (7200e6, 14400e6)  # as before
    assert (p.limits("a", "fast").commitment, p.limits("a", "fast").tolerance) == (300e6, 3600e6)  # inherits T
    assert (p.limits("a", "default").commitment, p.limits("a", "default").tolerance) == (600e6, 3600e6)


def test_out_refuses_a_directory_with_files_and_writes_nothing(tmp_path, source):
    policies, _ = load_policy_dir(source)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(OutError, match="not an empty directory"):
        write_policy_dir(str(source), str(busy), policies, [])
    assert [p.name for p in busy.iterdir()] == ["x"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".slamon-recommend-")]


def test_recommend_cli_reports_a_bad_out_in_one_line(tmp_path, source, capsys):
    events = str(write_events(tmp_path / "events.jsonl", generate(2)))
    assert slamon(["recommend", "--policies", str(source), "--events", events, "--target", "0.9",
                   "--out", str(source)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slamon recommend: --out: ") and "not an empty directory" in err and len(err.splitlines()) == 1


def test_recommendations_from_the_api_match_the_written_limits(tmp_path, source):
    events = str(write_events(tmp_path / "events.jsonl", generate(5, orders=100)))
    policies, _ = load_policy_dir(source)
    doc = recommend(policies, lambda: read_events(events), 0.9, 0.975, 60_000_000, 10)
    write_policy_dir(str(source), str(tmp_path / "out"), policies, doc["rows"])
    text = (tmp_path / "out" / "p.yaml").read_text()
    assert text.startswith("# Written by slamon recommend from p.yaml (version 3 -> 4)")
