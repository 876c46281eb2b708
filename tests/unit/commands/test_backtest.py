"""`slamon backtest`: the JSON of section 9, the table, and bad input."""

from __future__ import annotations

import orjson
import pytest

from monitor.cli import main as slamon

from ..runs_oracle import POLICY_YAML, generate, write_events, write_policies


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        slamon(["backtest", "--help"])
    out = capsys.readouterr().out
    assert "example" in out and "slamon backtest --policies" in out


def test_json_and_table(tmp_path, capsysbinary):
    current = str(write_policies(tmp_path / "current"))
    candidate = str(write_policies(tmp_path / "candidate", POLICY_YAML.replace("b: {commitment: 30m, tolerance: 30m}",
                                                                               "b: {commitment: 1m, tolerance: 2m}")))
    events = str(write_events(tmp_path / "events.jsonl", generate(4)))
    args = ["backtest", "--policies", current, "--candidate", candidate, "--events", events]
    assert slamon([*args, "--json"]) == 0
    doc = orjson.loads(capsysbinary.readouterr().out)
    assert set(doc) == {"now", "rows", "changed"}
    b = next(r for r in doc["rows"] if r["node"] == "b")
    assert b["changed_runs"] > 0 and set(b) == {"process", "node", "current", "candidate", "warnings", "changed_runs"}
    assert b["warnings"]["candidate"]["tolerance_breached"] > b["warnings"]["current"]["tolerance_breached"]
    assert slamon(args) == 0
    text = capsysbinary.readouterr().out.decode()
    assert "warn/day" in text and f"{sum(r['changed_runs'] for r in doc['rows'])} run(s) change state" in text


def test_a_rejected_candidate_is_named(tmp_path, capsys):
    current = str(write_policies(tmp_path / "current"))
    bad = str(write_policies(tmp_path / "bad", "process: p\nnodes:\n  a: {commitment: 2h, tolerance: 1h}\n"))
    events = str(write_events(tmp_path / "events.jsonl", generate(4)))
    assert slamon(["backtest", "--policies", current, "--candidate", bad, "--events", events]) == 2
    err = capsys.readouterr().err
    assert "slamon backtest: candidate policies rejected" in err and "tolerance" in err
