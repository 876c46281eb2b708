"""`slamon report`: flags, formats, --out, and bad input as one line on stderr with exit status 2."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from monitor.cli import main as slamon

from ..runs_oracle import generate, write_events, write_policies


@pytest.fixture
def files(tmp_path):
    return (str(write_policies(tmp_path / "policies")),
            str(write_events(tmp_path / "events.jsonl", generate(3, orders=50))))


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exit_:
        slamon(["report", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and "slamon report --policies" in out and "--from-kafka" in out


def test_the_formats_show_the_same_report(files, tmp_path, capsysbinary):
    policies, events = files
    base = ["report", "--policies", policies, "--events", events, "--period", "day", "--timezone", "Europe/Berlin"]
    assert slamon([*base, "--format", "json"]) == 0
    doc = orjson.loads(capsysbinary.readouterr().out)
    assert doc["timezone"] == "Europe/Berlin" and len(doc["periods"]) >= 5
    assert slamon([*base, "--format", "csv", "--out", str(tmp_path / "r.csv")]) == 0
    lines = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert len(lines) == sum(len(p["summary"]) for p in doc["periods"])
    assert slamon([*base, "--format", "html", "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert slamon(base) == 0
    text = capsysbinary.readouterr().out.decode()
    assert text.count("\n== ") == len(doc["periods"]) and "Invalid events: none" in text
    assert slamon([*base, "--format", "json", "--by-segment", "--from", "2026-03-06", "--to", "2026-03-06"]) == 0
    one = orjson.loads(capsysbinary.readouterr().out)
    assert len(one["periods"]) == 1 and all("segment" in r for r in one["periods"][0]["summary"])


@pytest.mark.parametrize("flags,message", [
    (["--timezone", "Moon/Base"],
     "slamon report: --timezone: unknown time zone 'Moon/Base' (e.g. UTC, Europe/Berlin, Asia/Shanghai)"),
    (["--from", "2026-13-01"], "slamon report: --from: '2026-13-01' is not a date like 2026-11-01"),
    (["--from", "2026-03-09", "--to", "2026-03-01"], "slamon report: --from 2026-03-09 is after --to 2026-03-01"),
    (["--now", "yesterday"], "slamon report: --now: not an RFC 3339 time with offset: 'yesterday'"),
])
def test_unusable_arguments_are_one_line_and_exit_2(files, capsys, flags, message):
    policies, events = files
    assert slamon(["report", "--policies", policies, "--events", events, "--period", "day", *flags]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [message]


def test_missing_or_damaged_events_and_bad_policies_exit_2(files, tmp_path, capsys):
    policies, events = files
    assert slamon(["report", "--policies", policies, "--events", str(tmp_path / "nope"), "--period", "day"]) == 2
    assert capsys.readouterr().err.startswith("slamon report: --events: no such file:")
    damaged = tmp_path / "events.jsonl.gz"
    damaged.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert slamon(["report", "--policies", policies, "--events", str(damaged), "--period", "day"]) == 2
    assert "damaged or cut short" in capsys.readouterr().err
    assert slamon(["report", "--policies", str(tmp_path / "none"), "--events", events, "--period", "day"]) == 2
    assert "policies rejected" in capsys.readouterr().err
    assert slamon(["report", "--policies", policies, "--events", events, "--period", "day", "--out",
                   str(tmp_path / "no" / "dir" / "r.txt")]) == 2
    assert capsys.readouterr().err.startswith("slamon report: --out: cannot write")
