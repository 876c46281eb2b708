"""The Prometheus rules: generated from the policies, committed up to date, valid for promtool, and behaving as
the promtool unit tests in deploy/prometheus/tests/ say (recording values, every alert firing and not firing)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.cli import main as slamon
from monitor.core.policies import build_policy_set, load_policy_dir
from monitor.rules import (
    HEALTH_FILE,
    LEVELS,
    MAX_ERROR_RATIO,
    RECORDING_FILE,
    REPORT_WINDOWS,
    SLO_FILE,
    WORKBOOK_TIERS,
    burn_tiers,
    generate,
)

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
RULES = PROM / "rules"
DEMO = ROOT / "deploy" / "demo" / "policies"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (make install installs it)")


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def rules_of(path: Path) -> list[dict]:
    return [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


# ------------------------------------------------------------------------------------------ generator


def test_committed_rules_are_generated_from_the_demo_policies(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    rc = slamon(["rules", "generate", "--policies", "deploy/demo/policies", "--check"])
    assert rc == 0, capsys.readouterr().err


def test_check_reports_a_stale_file(tmp_path, capsys):
    assert slamon(["rules", "generate", "--policies", str(DEMO), "--out", str(tmp_path)]) == 0
    assert slamon(["rules", "generate", "--policies", str(DEMO), "--out", str(tmp_path), "--check"]) == 0
    assert slamon(["rules", "generate", "--policies", str(DEMO), "--out", str(tmp_path), "--check",
                   "--min-runs", "3"]) == 1
    assert "out of date" in capsys.readouterr().err


def test_bad_policies_exit_2(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("process: p\nnodes:\n  n: {commitment: 2h, tolerance: 1h}\n")
    assert slamon(["rules", "generate", "--policies", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "tolerance" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [["rules", "--help"], ["rules", "generate", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        slamon(argv)
    assert exc.value.code == 0
    assert "usage: slamon rules" in capsys.readouterr().out


@pytest.mark.parametrize("target", [0.05, 0.5, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999])
def test_every_burn_factor_can_fire(target):
    budget = 1 - target
    tiers = burn_tiers(target)
    assert tiers[0].severity == "page" and (tiers[0].long, tiers[0].short) == ("1h", "5m")
    for t in tiers:
        assert t.factor < 1 / budget, "the error ratio can never exceed 1: a factor >= 1/budget cannot fire"
        assert t.threshold <= MAX_ERROR_RATIO + 1e-9
        assert math.isclose(t.threshold, t.factor * budget, rel_tol=1e-3)
        assert t.factor <= t.workbook_factor
    factors = [t.factor for t in tiers]
    assert factors == sorted(factors, reverse=True) and len(set(factors)) == len(factors)


def test_burn_factors_of_the_demo_targets_and_of_a_high_target():
    assert [(t.severity, t.long, t.factor, t.threshold) for t in burn_tiers(0.9)] == [
        ("page", "1h", 9.0, 0.9), ("page", "6h", 6.0, 0.6), ("ticket", "1d", 3.0, 0.3), ("ticket", "3d", 1.0, 0.1)]
    assert [(t.severity, t.long, t.factor, t.threshold) for t in burn_tiers(0.8)] == [
        ("page", "1h", 4.5, 0.9), ("ticket", "1d", 3.0, 0.6), ("ticket", "3d", 1.0, 0.2)]
    # a 99.9% target leaves the workbook's factors as they are
    assert [t.factor for t in burn_tiers(0.999)] == [t.factor for t in WORKBOOK_TIERS]
    assert [t.factor for t in burn_tiers(0.5)] == [1.8, 1.0]


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


def test_recording_rule_names_follow_the_level_metric_operations_convention():
    rules = rules_of(RULES / RECORDING_FILE)
    names = {r["record"] for r in rules}
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
        for level in LEVELS:
            for metric in ("sla_commitment_attainment", "sla_tolerance_attainment", "sla_breach_rate",
                           "sla_cancellation_rate"):
                assert f"{level}:{metric}:ratio_{w}" in names
            assert f"{level}:sla_runs_completed:increase_{w}" in names


def test_every_alert_has_severity_and_actionable_annotations():
    for f in (SLO_FILE, HEALTH_FILE):
        for r in rules_of(RULES / f):
            if "alert" not in r:
                continue
            assert r["labels"]["severity"] in ("page", "ticket"), r["alert"]
            assert {"summary", "description", "dashboard"} <= set(r["annotations"]), r["alert"]
            assert len(r["annotations"]["description"]) > 80


# ------------------------------------------------------------------------------------------ promtool


@needs_promtool
def test_promtool_checks_the_config_and_the_rule_files():
    r = promtool("check", "config", str(PROM / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 rule files found" in r.stdout
    r = promtool("check", "rules", *(str(p) for p in sorted(RULES.glob("*.rules.yml"))))
    assert r.returncode == 0, r.stdout + r.stderr


@needs_promtool
@pytest.mark.parametrize("test_file", sorted(p.name for p in (PROM / "tests").glob("*.yml")))
def test_promtool_unit_tests(test_file):
    r = promtool("test", "rules", test_file, cwd=PROM / "tests")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


@needs_promtool
def test_the_promtool_tests_notice_a_missing_volume_guard(tmp_path):
    """The rule tests are not vacuous: with a lower minimum volume the quiet node's alerts fire and
    slo.test.yml fails."""
    policies, _ = load_policy_dir(DEMO)
    from monitor.rules import Options

    (tmp_path / "rules").mkdir()
    for name, text in generate(policies, "test", Options(min_runs=3)).items():
        (tmp_path / "rules" / name).write_text(text)
    shutil.copytree(PROM / "tests", tmp_path / "tests")
    r = promtool("test", "rules", "slo.test.yml", cwd=tmp_path / "tests")
    assert r.returncode != 0
    assert 'node="installation"' in r.stdout + r.stderr


@needs_promtool
def test_rules_for_other_targets_are_valid(tmp_path):
    pol = tmp_path / "policies"
    pol.mkdir()
    for i, target in enumerate((0.5, 0.95, 0.999)):
        (pol / f"p{i}.yaml").write_text(
            f"process: p{i}\ntarget: {target}\nsegments: {{gold: {{n: {{commitment: 1m}}}}}}\n"
            "nodes:\n  n: {commitment: 2m, tolerance: 4m}\n")
    out = tmp_path / "rules"
    assert slamon(["rules", "generate", "--policies", str(pol), "--out", str(out), "--job", "sla",
                   "--min-runs", "25"]) == 0
    r = promtool("check", "rules", *(str(p) for p in sorted(out.glob("*.yml"))))
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'job="sla"' in (out / HEALTH_FILE).read_text()
    assert ">= 25" in (out / SLO_FILE).read_text()
