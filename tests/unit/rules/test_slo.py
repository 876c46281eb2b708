"""The SLO rules: burn-rate alerts for the processes that set a target, per node, with the node's owner."""

from __future__ import annotations

import yaml

from monitor.core.policies import build_policy_set
from monitor.rules import SLO_FILE, generate


def test_only_processes_with_a_target_get_burn_alerts():
    doc = {"process": "quiet", "nodes": {"n": {"commitment": "1h", "tolerance": "2h"}}}
    with_target = {"process": "strict", "target": 0.999, "order": {"commitment": "1d", "tolerance": "2d"},
                   "nodes": {"a": {"commitment": "1h", "tolerance": "2h", "owner": "team-a"}, "b": {
                       "commitment": "1h", "tolerance": "2h"}}}
    policies, _ = build_policy_set([("quiet.yaml", doc), ("strict.yaml", with_target)])
    slo = yaml.safe_load(generate(policies, "test")[SLO_FILE])
    alerts = [r for g in slo["groups"] for r in g["rules"] if "alert" in r]
    assert {(a["labels"]["process"], a["labels"]["node"]) for a in alerts} == {
        ("strict", "__order__"), ("strict", "a"), ("strict", "b")}
    assert len(alerts) == 3 * 4
    assert all("quiet" not in a["expr"] for a in alerts)
    assert {a["labels"].get("owner") for a in alerts} == {None, "team-a"}
    nothing, _ = build_policy_set([("quiet.yaml", doc)])
    assert yaml.safe_load(generate(nothing, "test")[SLO_FILE])["groups"] == []
