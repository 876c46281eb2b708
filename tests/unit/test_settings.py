"""Configuration: every SLAMON_* value checked, with the variable and the problem named."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.cli import main as slamon
from monitor.settings import SETTINGS, Settings, SettingsError


def test_the_defaults_are_valid():
    s = Settings.from_env({})
    assert s.kafka_bootstrap == "127.0.0.1:9092" and s.max_state_bytes == 524288 and s.log_level == "info"


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("SLAMON_LOG_LEVEL", "verbose", "use one of debug, info, warning, error"),
    ("SLAMON_PARTITIONS", "0", "must be positive"),
    ("SLAMON_PARTITIONS", "six", "is not a valid int"),
    ("SLAMON_TICK_INTERVAL", "-1", "must be positive"),
    ("SLAMON_MAX_STATE_BYTES", "10", "must be at least 1024"),
    ("SLAMON_STORE", "redis://", "use rocksdb:// or memory://"),
    ("SLAMON_CLOSED_RETENTION", "-5", "must not be negative"),
])
def test_an_invalid_value_is_named_with_its_problem(name, value, problem):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: value})
    assert name in str(err.value) and problem in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"SLAMON_PARTITIONS": "0", "SLAMON_LOG_LEVEL": "loud"})
    assert "SLAMON_PARTITIONS" in str(err.value) and "SLAMON_LOG_LEVEL" in str(err.value)


def test_a_command_with_a_bad_setting_exits_2_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("SLAMON_LOG_LEVEL", "verbose")
    assert slamon(["worker"]) == 2
    assert "SLAMON_LOG_LEVEL='verbose'" in capsys.readouterr().err


def test_every_setting_is_listed_in_the_help(capsys):
    with pytest.raises(SystemExit):
        slamon(["worker", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name, _, _ in SETTINGS)


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        slamon(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"slamon {__version__}"


def test_the_worker_exports_its_build(monkeypatch):
    from monitor.stream.metrics import MonitorMetrics

    m = MonitorMetrics(CollectorRegistry())
    assert m.registry.get_sample_value("slamon_build_info", {"version": __version__,
                                                             "python": __import__("platform").python_version()}) == 1
