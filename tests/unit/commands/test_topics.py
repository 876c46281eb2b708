from __future__ import annotations

import json
import socket

import pytest

from monitor.catalogue import load_schema
from monitor.cli import main as slamon

LOGICAL = ["workflow.events", "sla.ticks", "sla.warnings", "sla.outcomes", "sla.deadletter", "sla.policies"]


def listed(capsys, *flags: str) -> dict[str, dict]:
    assert slamon(["topics", "list", "--json", *flags]) == 0
    return {t["logical_name"]: t for t in json.loads(capsys.readouterr().out)}


@pytest.mark.parametrize("n", ["1", "3", "6", "12", "48", " 7 "])
def test_ticks_follow_events_partitions_from_env(capsys, monkeypatch, n):
    monkeypatch.setenv("SLAMON_PARTITIONS", n)
    by = listed(capsys)
    assert by["workflow.events"]["partitions"] == by["sla.ticks"]["partitions"] == int(n)
    assert by["sla.policies"]["partitions"] == 1


def test_the_flag_wins_over_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("SLAMON_PARTITIONS", "9")
    assert listed(capsys, "--partitions", "4")["sla.ticks"]["partitions"] == 4


def test_replication_and_prefix_from_env(capsys, monkeypatch):
    monkeypatch.setenv("SLAMON_REPLICATION", "3")
    monkeypatch.setenv("SLAMON_TOPIC_PREFIX", "t9.")
    by = listed(capsys)
    assert {t["replication"] for t in by.values()} == {3}
    assert all(t["config"]["min.insync.replicas"] == "2" for t in by.values())
    assert by["sla.warnings"]["name"] == "t9.sla.warnings"


@pytest.mark.parametrize("bad", ["0", "-2", "six", "1.5"])
def test_bad_partition_setting_is_rejected(capsys, monkeypatch, bad):
    monkeypatch.setenv("SLAMON_PARTITIONS", bad)
    assert slamon(["topics", "list"]) == 2
    assert "SLAMON_PARTITIONS" in capsys.readouterr().err


def test_cli_list(capsys, monkeypatch):
    monkeypatch.delenv("SLAMON_PARTITIONS", raising=False)
    monkeypatch.delenv("SLAMON_TOPIC_PREFIX", raising=False)
    assert slamon(["topics", "list", "--partitions", "4", "--prefix", "x."]) == 0
    out = capsys.readouterr().out
    for name in LOGICAL:
        assert "x." + name in out
    assert slamon(["topics", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed] == LOGICAL and listed[1]["partitions"] == 6


def test_cli_help(capsys):
    for argv in (["--help"], ["list", "--help"], ["apply", "--help"], ["schema", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            slamon(["topics", *argv])
        assert exit_.value.code == 0
    assert "--bootstrap" in capsys.readouterr().out


def test_cli_schema(capsys):
    assert slamon(["topics", "schema", "sla.deadletter"]) == 0
    assert json.loads(capsys.readouterr().out) == load_schema("sla-deadletter")
    assert slamon(["topics", "schema", "nope"]) == 2


def test_cli_apply_bad_partitions_is_a_usage_error(capsys):
    assert slamon(["topics", "apply", "--bootstrap", "127.0.0.1:1", "--partitions", "0"]) == 2
    assert "partitions" in capsys.readouterr().err


def test_cli_apply_unreachable_cluster_exits_2(capsys):
    with socket.socket() as s:  # a port nobody listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert slamon(["topics", "apply", "--bootstrap", f"127.0.0.1:{port}", "--timeout", "10"]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach Kafka at 127.0.0.1:{port}" in err
