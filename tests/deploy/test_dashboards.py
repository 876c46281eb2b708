"""The Grafana dashboards: every PromQL expression parses (promtool) and refers only to metrics the real exporter
produces, to recording rules of deploy/prometheus/rules, or to `up`; the provisioning files fit together."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.policies import load_policy_dir
from monitor.stream.metrics import MonitorMetrics

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RULES = ROOT / "deploy" / "prometheus" / "rules"
PROMTOOL = shutil.which("promtool")

# Grafana's built-in variables, replaced by something of the right kind before parsing
BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "__range_s": "3600",
            "__interval_ms": "60000", "__range_ms": "3600000"}
FUNCTIONS_AND_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                          "group_left", "group_right", "inf", "nan", "atan2"}


def exporter_metric_names() -> set[str]:
    """Sample names of the real exporter, primed with the demo policies (histograms: _bucket, _sum, _count)."""
    policies, _ = load_policy_dir(ROOT / "deploy" / "demo" / "policies")
    m = MonitorMetrics(CollectorRegistry())
    m.prime(policies)
    text = generate_latest(m.registry).decode()
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


def deployed_records() -> set[str]:
    """Series recorded by the rule files Prometheus loads: those of monitor.rules.recorded_names() and, from the
    SLO file, the per-policy target and error budget series (which recorded_names() does not list)."""
    names = set()
    for f in RULES.glob("*.rules.yml"):
        for g in yaml.safe_load(f.read_text())["groups"]:
            names |= {r["record"] for r in g["rules"] if "record" in r}
    return names


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def all_panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    return out


def substitute(expr: str, dash: dict[str, Any]) -> str:
    """Replace Grafana variables: built-ins by a duration, custom variables by their first option, query
    variables by a plain label value."""
    values = dict(BUILTINS)
    for v in dash.get("templating", {}).get("list", []):
        if v["type"] == "custom":
            values[v["name"]] = v["query"].split(",")[0].strip()
        else:
            values.setdefault(v["name"], "x")

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        assert name in values, f"unknown variable ${name} in {expr}"
        return values[name]

    # `$1` in label_replace is a regex group reference, not a variable: names start with a letter or `_`
    return re.sub(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)", repl, expr)


def expressions(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable of a dashboard."""
    out = []
    for p in all_panels(dash):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"{dash['uid']}: {p['title']} [{t['refId']}]", substitute(t["expr"], dash)))
    for v in dash.get("templating", {}).get("list", []):
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q)
            assert m, f"variable {v['name']}: use label_values(selector, label), got {q}"
            out.append((f"{dash['uid']}: variable {v['name']}", substitute(m.group(1), dash)))
    return out


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are neither functions, keywords, label names in
    by/without/on/ignoring/group_* clauses, nor inside strings, label matchers or ranges."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word in FUNCTIONS_AND_KEYWORDS:
            continue
        names.add(word)
    return names


def test_metric_name_extraction():
    e = ('label_join(sum by (process, node) (increase(sla_run_outcomes_total{state=~"completed_.*"}[1h])) '
         '/ on (process) group_left(owner) (x:y:ratio_1h > 0), "flow", "/", "process", "node") * 1e3')
    assert metric_names(e) == {"sla_run_outcomes_total", "x:y:ratio_1h"}
    assert metric_names('histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m]))) > bool 2') == {"a_bucket"}


def test_there_are_three_dashboards_with_distinct_uids():
    dashes = [load(p) for p in DASHBOARDS]
    assert {d["uid"] for d in dashes} == {"slamon-overview", "slamon-node", "slamon-operations"}
    for d in dashes:
        ids = [p["id"] for p in all_panels(d)]
        assert len(ids) == len(set(ids)), d["uid"]
        for p in all_panels(d):
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24 and g["h"] > 0, (d["uid"], p["title"])
            if p["type"] != "row":
                assert p["datasource"] == {"type": "prometheus", "uid": "${ds}"}, (d["uid"], p["title"])
                assert p.get("description"), (d["uid"], p["title"], "every panel says what it shows")
                assert p.get("targets"), (d["uid"], p["title"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_expression_uses_only_exported_or_recorded_metrics(path):
    known = exporter_metric_names() | deployed_records() | {"up"}
    exprs = expressions(load(path))
    assert exprs
    for where, expr in exprs:
        unknown = metric_names(expr) - known
        assert not unknown, f"{where}: unknown metric(s) {sorted(unknown)} in {expr}"


def test_the_dashboards_cover_what_the_issue_asks_for():
    text = {p.stem: p.read_text() for p in DASHBOARDS}
    overview, node, ops = text["slamon-overview"], text["slamon-node"], text["slamon-operations"]
    for w in ("1h", "1d", "7d", "30d"):
        assert f"process:sla_commitment_attainment:ratio_{w}" in overview
    assert "sla_runs_in_progress" in overview and "sla_run_outcomes_total" in overview
    assert "sla_crossings_total" in overview
    assert '"heatmap"' in node and "sla_run_duration_seconds_bucket" in node
    assert "sla_run_elapsed_ratio_bucket" in node and "histogram_quantile(0.9, sum by (process, node, le)" in node
    for needle in ("sla_events_total", "sla_invalid_events_total", 'caught_up=\\"false\\"',
                   "sla_warning_delay_seconds_bucket", 'up{job=\\"slamon\\"}'):
        assert needle in ops, needle


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (make install installs it)")
def test_every_expression_parses(tmp_path):
    exprs = [(where, e) for p in DASHBOARDS for where, e in expressions(load(p))]
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard_expr_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]}]}
    f = tmp_path / "dashboards.rules.yml"
    f.write_text(yaml.safe_dump(rules, width=1000))
    r = subprocess.run([PROMTOOL, "check", "rules", str(f)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        bad = re.findall(r"dashboard_expr_(\d+)", r.stdout + r.stderr)
        detail = "\n".join(f"{exprs[int(i)][0]}: {exprs[int(i)][1]}" for i in bad)
        pytest.fail(f"promtool rejects dashboard expressions:\n{r.stdout}{r.stderr}\n{detail}")
    assert f"{len(exprs)} rules found" in r.stdout


def test_provisioning_fits_the_dashboards():
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "slamon.yml").read_text())
    [provider] = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/dashboards"
    for p in DASHBOARDS:
        ds_vars = [v for v in load(p)["templating"]["list"] if v["type"] == "datasource"]
        assert [v["query"] for v in ds_vars] == ["prometheus"], p.name
