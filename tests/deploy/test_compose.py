"""docker-compose.yml: valid against the Compose Specification schema (vendored in tests/data), pinned images
with health checks, every mounted file or directory present in the repository, and consistent with the
Prometheus, Grafana and worker settings it wires together. (No Docker engine here: nothing is started.)"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "data" / "compose_spec.json"
# written in another issue (on-call integration); until then its mount is expected to fail


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def bind_mounts() -> list[tuple[str, str, str]]:
    """(service, host path relative to the repo, container path) of every bind mount."""
    doc = yaml.safe_load(COMPOSE.read_text())
    out = []
    for name, svc in doc["services"].items():
        for v in svc.get("volumes", []):
            src, dst = (v["source"], v["target"]) if isinstance(v, dict) else v.split(":")[:2]
            if src.startswith((".", "/")):
                out.append((name, str(Path(src)), dst))
    return out


def test_valid_against_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text())
    # the file declares draft 2019-09 (as "http://json-schema.org/draft/2019-09/schema#")
    errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_schema_rejects_a_broken_file(compose):
    schema = json.loads(SCHEMA.read_text())
    broken = {**compose, "services": {**compose["services"], "kafka": {**compose["services"]["kafka"],
                                                                      "healthcheck": {"test": 1}}}}
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(broken))


def test_the_expected_services_are_there(compose):
    assert set(services(compose)) == {"kafka", "redis", "worker-1", "worker-2", "board", "notifier", "generator",
                                      "prometheus", "alertmanager", "grafana"}


def test_images_are_pinned(compose):
    for name, svc in services(compose).items():
        image = svc["image"]
        if "build" in svc or image == "slamon:local":
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and re.search(r"\d+\.\d+\.\d+", tag), f"{name}: pin a full version, not {image!r}"
    assert services(compose)["kafka"]["image"].startswith("apache/kafka:4.")
    assert services(compose)["alertmanager"]["image"].startswith("prom/alertmanager:")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim", dockerfile, re.M)


def test_long_running_services_have_health_checks(compose):
    for name, svc in services(compose).items():
        assert svc.get("restart") == "unless-stopped", name
        if name == "generator":  # a producer: nothing depends on it, and it serves nothing to ask
            assert svc["healthcheck"] == {"disable": True}
            continue
        assert svc.get("healthcheck", {}).get("test"), name


def test_services_of_the_image_that_are_not_workers_do_not_inherit_its_readyz_check(compose):
    # the image's HEALTHCHECK asks the worker's /readyz, which only `slamon worker` serves
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\n.*/readyz", dockerfile, re.M) and 'CMD ["slamon", "worker"]' in dockerfile
    for name, svc in services(compose).items():
        if svc["image"] != "slamon:local" or name.startswith("worker-"):
            continue
        assert "command" in svc, name
        check = svc.get("healthcheck")
        assert check, f"{name} would inherit the worker's /readyz check"
        assert check.get("disable") is True or "/readyz" not in check["test"][-1], name


@pytest.mark.parametrize("name", ["board", "notifier"])
def test_the_oncall_health_checks_ask_the_process(compose, name):
    svc = services(compose)[name]
    env = svc["environment"]
    kind, flag, code = svc["healthcheck"]["test"][-3:]
    assert (kind, flag) == ("python", "-c")
    assert f"http://127.0.0.1:{env['SLAMON_WEB_PORT']}/healthz" in code and env["SLAMON_WEB_HOST"] == "0.0.0.0"
    assert not re.search(r"redis|alertmanager|/-/ready", code, re.I)
    assert svc["command"] == ["slamon", name]


def test_the_oncall_health_check_passes_while_the_loop_is_alive_and_fails_when_it_hangs(compose):
    """The check's own code, run against a board's /healthz (on a free port instead of 6066)."""
    import asyncio
    import logging
    import subprocess
    import sys

    from monitor.localstack.procs import free_port
    from monitor.oncall.service import Service

    code = services(compose)["board"]["healthcheck"]["test"][-1]
    port = free_port()
    code = code.replace(":6066/", f":{port}/")
    service = Service("board", logging.getLogger("test.compose"), stall_after=30)

    async def check() -> int:
        p = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stderr=subprocess.DEVNULL)
        return await p.wait()

    async def main() -> tuple[int, int, int]:
        down = await check()
        async with service.web("127.0.0.1", port):
            alive = await check()
            service.watch.last -= 31
            stuck = await check()
        return down, alive, stuck

    down, alive, stuck = asyncio.run(asyncio.wait_for(main(), 30))
    assert (alive, down != 0, stuck != 0) == (0, True, True)


@pytest.mark.parametrize("service,src,dst", bind_mounts(), ids=lambda x: x if "/" not in x else None)
def test_every_mounted_path_exists(service, src, dst):
    assert (ROOT / src).exists(), f"{service} mounts {src}, which is not in the repository"


def test_workers_run_the_image_built_here_and_serve_metrics_on_6066(compose):
    svcs = services(compose)
    assert (ROOT / svcs["worker-1"]["build"]["context"] / svcs["worker-1"]["build"]["dockerfile"]).is_file()
    for name in ("worker-1", "worker-2"):
        env = svcs[name]["environment"]
        assert env["SLAMON_WEB_HOST"] == "0.0.0.0" and env["SLAMON_WEB_PORT"] == "6066"
        assert env["SLAMON_KAFKA_BOOTSTRAP"] == "kafka:19092"
        assert "SLAMON_TOPICS_DIR" not in env  # the catalogue is package data
        assert "6066" in svcs[name]["healthcheck"]["test"][-1]
    assert svcs["worker-1"]["environment"]["SLAMON_POLICIES"] == "/etc/slamon/policies"
    assert "SLAMON_POLICIES" not in svcs["worker-2"]["environment"]
    kafka_env = svcs["kafka"]["environment"]
    assert "PLAINTEXT://kafka:19092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile and "COPY topics" in dockerfile and "SLAMON_TOPICS_DIR" not in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".stack"} <= set(ignored)
    assert not {"monitor", "topics", "pyproject.toml", "README.md"} & set(ignored)


def test_prometheus_scrapes_the_compose_workers_and_keeps_31_days(compose):
    svcs = services(compose)
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [job] = [j for j in prom["scrape_configs"] if j["job_name"] == "slamon"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert sorted(targets) == ["worker-1:6066", "worker-2:6066"]
    for t in targets:
        assert t.split(":")[0] in svcs
    [am] = [t for a in prom["alerting"]["alertmanagers"] for sc in a["static_configs"] for t in sc["targets"]]
    assert am == "alertmanager:9093"
    flags = svcs["prometheus"]["command"]
    [retention] = [f for f in flags if f.startswith("--storage.tsdb.retention.time=")]
    assert int(retention.split("=")[1].split("#")[0].strip().rstrip("d")) > 31
    assert "--config.file=/etc/prometheus/prometheus.yml" in flags
    assert any(v.startswith("./deploy/prometheus:/etc/prometheus") for v in svcs["prometheus"]["volumes"])
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in svcs["alertmanager"]["command"]


def test_grafana_is_provisioned_from_deploy_grafana(compose):
    g = services(compose)["grafana"]
    mounts = {src: dst for _, src, dst in bind_mounts() if _ == "grafana"}
    assert mounts["deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/slamon.yml").read_text())
    assert mounts["deploy/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    home = g["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "deploy/grafana/dashboards" / Path(home).name).is_file()


def test_the_generator_command_runs_the_demo_generator(compose):
    gen = services(compose)["generator"]
    python, flag, code = gen["command"]
    assert (python, flag) == ("python", "-c")
    compile(code, "<generator>", "exec")
    from monitor.demo.generator import Generator

    assert list(inspect.signature(Generator).parameters) == ["settings", "topic", "rng"]
    assert inspect.iscoroutinefunction(Generator.run)
    assert list(inspect.signature(Generator.run).parameters) == ["self", "rate"]
    for var in re.findall(r"os\.environ\['(\w+)'\]", code):
        assert var in gen["environment"], var


def test_host_ports_are_documented(compose):
    readme = (ROOT / "README.md").read_text()
    for name, svc in services(compose).items():
        for p in svc.get("ports", []):
            host = str(p).split(":")[0]
            assert f"`{host}`" in readme, f"port {host} of {name} is not in README.md"
