"""On-call against real servers: Alertmanager (Debian) and Redis, fed by a real worker through Kafka."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis

from monitor.localstack.redis_server import RedisServer

from .live import ROOT, Topics, Worker, event, free_port, now, seconds, wait_for, worker_env
from .test_live import write_policies

pytestmark = pytest.mark.integration

POLICY = """process: p
version: 1
nodes:
  n: {commitment: 2s, tolerance: 60s, owner: field-ops}
  q: {commitment: 1s, tolerance: 2s, owner: install-team}
"""
AM = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self.p = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("ab"),
                                  stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


class Alertmanager:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.proc: Proc | None = None

    def start(self) -> Alertmanager:
        self.proc = Proc([AM, f"--config.file={ROOT / 'deploy/alertmanager/alertmanager.yml'}",
                          f"--storage.path={self.tmp / 'am-data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                          "--cluster.listen-address="], {}, self.tmp / "alertmanager.log")
        wait_for(lambda: self._get("/-/ready") is not None, 30, "Alertmanager to be ready")
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def _get(self, path: str):
        try:
            with urllib.request.urlopen(self.url + path, timeout=3) as r:
                return r.read()
        except OSError:
            return None

    def alerts(self, order_id: str) -> list[dict]:
        body = self._get("/api/v2/alerts")
        return [a for a in json.loads(body or b"[]") if a["labels"].get("order_id") == order_id]


def start_alertmanager(tmp: Path) -> Alertmanager:
    if AM is None:
        pytest.fail("prometheus-alertmanager is not installed (make install installs it)")
    return Alertmanager(tmp).start()


@pytest.fixture(scope="module")
def env(stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oncall")
    prefix = f"o{uuid.uuid4().hex[:8]}."
    pol = write_policies(tmp / "policies", POLICY)
    w = Worker(worker_env(stack, prefix, free_port(), tmp / "data", SLAMON_POLICIES=str(pol),
                          SLAMON_TICK_INTERVAL="0.5"), tmp / "worker.log").start()
    am = start_alertmanager(tmp)
    try:
        w.wait_ready()
        yield {"stack": stack, "prefix": prefix, "topics": Topics(stack.kafka_bootstrap, prefix), "tmp": tmp, "am": am}
    finally:
        w.stop()
        am.stop()


def oncall_env(env, **extra) -> dict[str, str]:
    """The environment of one board or notifier process (each serves /metrics and /healthz on a port of its own)."""
    return {"SLAMON_KAFKA_BOOTSTRAP": env["stack"].kafka_bootstrap, "SLAMON_REDIS_URL": env["stack"].redis_url,
            "SLAMON_TOPIC_PREFIX": env["prefix"], "SLAMON_APP_ID": env["prefix"].rstrip("."),
            "SLAMON_ALERTMANAGER_URL": env["am"].url, "SLAMON_WEB_PORT": str(free_port()), **extra}


def notifier(env, name: str, **extra) -> Proc:
    return Proc([sys.executable, "-m", "monitor.cli", "notifier", "--lease", "3", "--resend", "1",
                 "--keep-resolved", "30"], oncall_env(env, **extra), env["tmp"] / f"{name}.log")


def test_breach_alert_stays_active_past_its_lease_and_resolves(env):
    topics, am = env["topics"], env["am"]
    n = notifier(env, "notifier-1")
    try:
        order = f"am-{uuid.uuid4().hex[:6]}"
        start = now()
        topics.produce([event(order, "node_started", start, segment="gold", attrs={"site": "x"})])
        [alert] = wait_for(lambda: am.alerts(order), 30, "the commitment alert in Alertmanager")
        labels, ann = alert["labels"], alert["annotations"]
        assert labels == {"alertname": "SLACommitmentBreached", "severity": "warning", "process": "p", "node": "n",
                          "run": "1", "owner": "field-ops", "segment": "gold", "order_id": order}
        assert ann["commitment"] == "2s" and ann["tolerance"] == "1m" and ann["warning_id"] == f"{order}:n:1:commitment_breached"
        assert "passed its commitment" in ann["summary"] and ann["started_at"].startswith(start.isoformat()[:19])
        assert alert["status"]["state"] == "active"
        # longer than the 3 s lease: re-sends keep it active
        wait_for(lambda: now() > start + seconds(2 + 3 + 2), 20, "the lease to pass")
        [alert] = am.alerts(order)
        assert alert["status"]["state"] == "active"
        topics.produce([event(order, "node_completed", now())])
        wait_for(lambda: not am.alerts(order), 30, "the alert to be resolved")
    finally:
        n.stop()


def test_alertmanager_outage_loses_no_alert(env):
    topics, am = env["topics"], env["am"]
    am.stop()
    n = notifier(env, "notifier-2")
    try:
        order = f"down-{uuid.uuid4().hex[:6]}"
        topics.produce([event(order, "node_started", now(), node="q")])
        wait_for(lambda: [w for w in topics.records("sla.warnings") if w["order_id"] == order
                          and w["kind"] == "tolerance_breached"], 20, "the breaches on sla.warnings")
        am.start()
        got = wait_for(lambda: {a["labels"]["alertname"]: a for a in am.alerts(order)}
                       if len(am.alerts(order)) == 2 else None, 60, "both alerts after Alertmanager returned")
        assert got["SLAToleranceBreached"]["labels"]["severity"] == "critical"
        # the inhibit rule: the tolerance breach silences the commitment breach of the same run
        assert got["SLACommitmentBreached"]["status"]["state"] == "suppressed"
        assert got["SLAToleranceBreached"]["status"]["state"] == "active"
    finally:
        n.stop()


def board_dump(r: redis.Redis, ns: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in r.scan_iter(f"{ns}:*"):
        k = key.decode()
        if ":alerts:" in k or k.endswith(":workers"):
            continue
        t = r.type(key).decode()
        name = k[len(ns):]
        if t == "hash":
            out[name] = {f.decode(): json.loads(v) for f, v in r.hgetall(key).items()}
        elif t == "zset":
            out[name] = [(m.decode(), s) for m, s in r.zrange(key, 0, -1, withscores=True)]
        elif t == "string":
            out[name] = json.loads(r.get(key))
    return out


def test_redis_outage_then_the_board_equals_a_fresh_replay(env, tmp_path):
    topics = env["topics"]
    server = RedisServer(tmp_path / "redis", free_port(), aof=True)
    proc = server.start()
    server.wait_ready(proc.pid, 20)
    url = server.url
    board = Proc([sys.executable, "-m", "monitor.cli", "board"], oncall_env(env, SLAMON_REDIS_URL=url),
                 tmp_path / "board.log")
    r = redis.Redis.from_url(url)
    ns = f"slamon:{env['prefix'].rstrip('.')}"
    try:
        tag = f"rb{uuid.uuid4().hex[:5]}"
        t0 = now()
        first = [event(f"{tag}-{i}", "node_started", t0, node="q") for i in range(6)]
        topics.produce(first + [event(f"{tag}-0", "node_completed", t0 + seconds(0.5), node="q")])
        wait_for(lambda: r.zcard(f"{ns}:breaches") >= 5, 30, "breaches on the board")
        proc.terminate()
        proc.wait(10)
        # while Redis is down: completions and new breaches flow
        t1 = now()
        topics.produce([event(f"{tag}-{i}", "node_completed", t1, node="q") for i in range(1, 4)]
                       + [event(f"{tag}-x{i}", "node_started", t1, node="q") for i in range(3)])
        wait_for(lambda: len([w for w in topics.records("sla.warnings") if w["order_id"].startswith(f"{tag}-x")
                              and w["kind"] == "tolerance_breached"]) == 3, 20, "warnings during the outage")
        proc = server.start()
        server.wait_ready(proc.pid, 20)
        fresh = Proc([sys.executable, "-m", "monitor.cli", "board"],
                     oncall_env(env, SLAMON_REDIS_URL=url, SLAMON_APP_ID=f"fresh{tag}"), tmp_path / "fresh.log")
        try:
            def converged():
                a, b = board_dump(r, ns), board_dump(r, f"slamon:fresh{tag}")
                mine = {k: v for k, v in a.items() if tag in k or k in (":breaches",)}
                return (a, b) if a and a == b and any(tag in k for k in mine) else None

            a, b = wait_for(converged, 60, "the board to equal a fresh replay of the topics")
            open_breaches = [m for m, _ in a[":breaches"] if m.startswith(tag)]
            assert sorted(open_breaches) == sorted(
                [f"{tag}-{i}:q:1:{k}" for i in (4, 5) for k in ("commitment_breached", "tolerance_breached")]
                + [f"{tag}-x{i}:q:1:{k}" for i in range(3) for k in ("commitment_breached", "tolerance_breached")])
            [outcome] = [o for o in topics.records("sla.outcomes") if o["order_id"] == f"{tag}-1"]
            run = a[f":order:{tag}-1"]["q:1"]
            assert (run["state"], run["ended_at"], run["elapsed_s"]) == (outcome["state"], outcome["ended_at"],
                                                                        outcome["elapsed_s"])
            assert run["level"] == outcome["state"].removeprefix("completed_")
        finally:
            fresh.stop()
    finally:
        board.stop()
        proc.terminate()
        proc.wait(10)
