"""The Prometheus rules under deploy/prometheus: generated from the demo policies, committed up to date, valid for
promtool, and behaving as the promtool unit tests in deploy/prometheus/tests/ say (recording values, every alert
firing and not firing)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.cli import main as slamon
from monitor.core.policies import load_policy_dir
from monitor.rules import HEALTH_FILE, SLO_FILE, Options, generate

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
