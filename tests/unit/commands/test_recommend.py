"""`slamon recommend`: flags and bad input (the recommendations themselves: tests/unit/core/test_recommend.py)."""

from __future__ import annotations

import orjson
import pytest

from monitor.cli import main as slamon

from ..runs_oracle import generate, write_events, write_policies


@pytest.fixture
def args(tmp_path):
    return ["recommend", "--policies", str(write_policies(tmp_path / "policies")),
            "--events", str(write_events(tmp_path / "events.jsonl", generate(6, orders=120)))]


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        slamon(["recommend", "--help"])
    out = capsys.readouterr().out
    assert "example" in out and "slamon recommend --policies" in out and "--tolerance-target" in out


def test_json_defaults_and_table(args, capsysbinary):
    assert slamon([*args, "--target", "0.8", "--json", "--min-runs", "5", "--granularity", "5m"]) == 0
    doc = orjson.loads(capsysbinary.readouterr().out)
    assert doc["tolerance_target"] == 1 - (1 - 0.8) / 4 and doc["rows"]
    for r in doc["rows"]:
        assert r["recommended"]["commitment_s"] % 300 == 0 and r["recommended"]["attainment"] >= 0.8
        assert r["recommended"]["tolerance_s"] >= r["recommended"]["commitment_s"]
    assert slamon([*args, "--target", "0.8", "--min-runs", "5"]) == 0
    assert "Limits for 80.0% within commitment" in capsysbinary.readouterr().out.decode()


@pytest.mark.parametrize("flags,message", [
    (["--target", "1.5"], "slamon recommend: --target: expected a share between 0 (exclusive) and 1, got 1.5"),
    (["--target", "0"], "slamon recommend: --target: expected a share between 0 (exclusive) and 1, got 0.0"),
    (["--target", "0.9", "--tolerance-target", "2"],
     "slamon recommend: --tolerance-target: expected a share between 0 (exclusive) and 1, got 2.0"),
    (["--target", "0.9", "--granularity", "soon"], "slamon recommend: --granularity: 'soon' is not a duration "
                                                   "(expected e.g. 45s, 15m, 4h, 2d, 1d12h30m, PT4H)"),
    (["--target", "0.9", "--granularity", "0"], "slamon recommend: --granularity: must be positive"),
    (["--target", "0.9", "--min-runs", "-1"], "slamon recommend: --min-runs: must not be negative"),
])
def test_unusable_arguments_exit_2(args, capsys, flags, message):
    assert slamon([*args, *flags]) == 2
    assert capsys.readouterr().err.splitlines() == [message]
