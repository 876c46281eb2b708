"""The package as pip installs it (not the source tree): the topic catalogue and schemas travel inside it, so
`slamon topics list`, `slamon topics schema` and `slamon replay` work from any directory with no extra setting."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install --no-deps --target DIR .` (dependencies come from this interpreter's environment)."""
    source = tmp_path_factory.mktemp("source")  # a copy: a build in the checkout would leave build/ behind
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        src, dst = ROOT / name, source / name
        if src.is_symlink() or src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
    target = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(source)], check=True, capture_output=True, timeout=300)
    return target


def slamon(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")}
    env["PYTHONPATH"] = str(installed)
    return subprocess.run([sys.executable, "-m", "monitor.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def test_the_installed_package_carries_the_catalogue(installed, tmp_path):
    data = installed / "monitor" / "catalogue" / "data"
    assert (data / "catalogue.yaml").is_file() and not (data / "catalogue.yaml").is_symlink()
    assert {p.name for p in (data / "schemas").glob("*.json")} == {p.name for p in (ROOT / "topics/schemas").glob("*.json")}
    where = subprocess.run([sys.executable, "-c", "import monitor; print(monitor.__file__)"], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(installed)}, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(installed))  # the installed copy, not the source tree


def test_topics_and_replay_work_from_another_directory(installed, tmp_path):
    listed = slamon(installed, tmp_path, "topics", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [t["logical_name"] for t in json.loads(listed.stdout)][:2] == ["workflow.events", "sla.ticks"]
    schema = slamon(installed, tmp_path, "topics", "schema", "sla.warnings")
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in [
        {"event_id": "e1", "order_id": "o1", "process": "support_ticket", "type": "node_started", "node": "triage",
         "at": "2026-11-21T08:00:00Z"},
        {"event_id": "e2", "order_id": "o1", "process": "support_ticket", "type": "node_completed",
         "node": "triage", "at": "2026-11-21T08:00:09Z"}]) + "\n")
    replayed = slamon(installed, tmp_path, "replay", "--policies", str(ROOT / "deploy/demo/policies"),
                      "--events", str(events), "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert [r["node"] for r in json.loads(replayed.stdout)["summary"]] == ["triage"]
