"""deploy/alertmanager/alertmanager.yml routes every alert the shipped rule files can fire to a receiver made for
it: slamon's own health alerts to `platform`, the SLO alerts to their owner's team; none falls through to
`default`. The routing is computed here (first matching child route, matchers anded, regexes anchored) and checked
against Alertmanager's own `amtool config routes test`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.rules.yml"))
AMTOOL = shutil.which("amtool")
MATCHER = re.compile(r'\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


def rule_alerts() -> list[tuple[str, dict[str, str]]]:
    """(rule file, labels) of every alerting rule of the rule files: alertname and the rule's labels."""
    out = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out.append((path.name, {"alertname": rule["alert"], **{k: str(v) for k, v in
                                                                            rule.get("labels", {}).items()}}))
    return out


def matches(matcher: str, labels: dict[str, str]) -> bool:
    m = MATCHER.fullmatch(matcher)
    assert m, f"cannot read the matcher {matcher!r}"
    name, op, value = m.group(1), m.group(2), m.group(3).encode().decode("unicode_escape")
    have = labels.get(name, "")
    if op in ("=", "!="):
        return (have == value) == (op == "=")
    return (re.fullmatch(value, have) is not None) == (op == "=~")


def receiver(route: dict, labels: dict[str, str]) -> str:
    """The receiver Alertmanager picks for `labels`: the first child route that matches, recursively."""
    for child in route.get("routes", []):
        assert set(child) <= {"matchers", "receiver", "routes", "group_by", "group_wait", "group_interval",
                              "repeat_interval"}, f"this test does not know {set(child)}"
        if all(matches(m, labels) for m in child.get("matchers", [])):
            return receiver({"receiver": route["receiver"], **child}, labels)
    return route["receiver"]


@pytest.fixture(scope="module")
def route() -> dict:
    return yaml.safe_load(CONFIG.read_text())["route"]


def test_the_rule_files_have_health_and_slo_alerts():
    names = {labels["alertname"] for _, labels in rule_alerts()}
    assert {"SlamonNoWorkers", "SlamonWorkerDown"} <= names
    assert any(n.startswith("SLA") for n in names)


@pytest.mark.parametrize("source,labels", rule_alerts(), ids=lambda x: x["alertname"] if isinstance(x, dict) else x)
def test_every_rule_alert_reaches_a_receiver_of_its_own(route, source, labels):
    got = receiver(route, labels)
    assert got != route["receiver"], f"{labels['alertname']} ({source}) falls through to {got!r}"
    if source == "slamon-health.rules.yml":
        assert got == "platform"
    elif "owner" in labels:
        expected = {"second-line": "service-desk"}.get(labels["owner"], labels["owner"])
        assert got == expected


def test_the_routing_here_is_alertmanagers(route):
    if AMTOOL is None:
        pytest.fail("amtool is not installed (it comes with prometheus-alertmanager; make install installs it)")
    assert subprocess.run([AMTOOL, "check-config", str(CONFIG)], capture_output=True).returncode == 0
    seen = set()
    cases = [labels for _, labels in rule_alerts()] + [
        {"alertname": "SLACommitmentBreached", "owner": "none", "severity": "warning"},
        {"alertname": "SLAToleranceBreached", "owner": "field-ops", "severity": "critical"},
        {"alertname": "SLAMonitorX"}, {"alertname": "Slamon"}]
    for labels in cases:
        key = tuple(sorted(labels.items()))
        if key in seen:
            continue
        seen.add(key)
        out = subprocess.run([AMTOOL, "config", "routes", "test", f"--config.file={CONFIG}",
                              *(f"{k}={v}" for k, v in labels.items())], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == receiver(route, labels), labels
