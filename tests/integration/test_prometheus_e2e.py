"""End to end with a real Prometheus: a worker's counters, scraped every second and turned into rolling
attainment by the shipped recording rules, agree with `slamon replay` on the same events.

Why the ratios agree exactly (up to float rounding, tolerance 1e-9) although increase() extrapolates: every
series of the policy exists at zero before the first scrape (the worker primes them when policies load, and the
test waits for two scrapes before producing), so no series is extrapolated before its first sample; and all
series of one target share the scrape timestamps, so the extrapolation to the end of the window multiplies the
increase of every series by the same factor, which cancels in a ratio. Counts (runs completed in 1h) are
therefore only bounded: replay count <= Prometheus count <= replay count * (1 + 1.1 * scrape interval /
sampled interval), the sampled interval being the time from the first to the last scrape.
Breach rates depend on when the worker saw each event (see below), so they are checked against the worker's own
counters instead.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from datetime import datetime

import orjson
import pytest

from .live import ROOT, Topics, Worker, event, free_port, now, seconds, utc, wait_for, worker_env

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed")]

RULES = ROOT / "deploy" / "prometheus" / "rules"
SCRAPE = 1.0
POLICY = """process: e2e
version: 1
target: 0.9
order: {commitment: 60s, tolerance: 90s, owner: desk}
nodes:
  a: {commitment: 10s, tolerance: 20s, owner: team-a}
  b: {commitment: 5s, tolerance: 8s, owner: team-b}
segments:
  gold:
    a: {commitment: 6s, tolerance: 12s}
"""
COMPLETED = ("completed_normal", "completed_acceptable", "completed_warning")


def scenario(tag: str, t0: datetime, rng: random.Random) -> list[dict]:
    """40 orders in the past (event time), a then b then the order's end; a few cancelled, a few left open.
    Whole-second node durations and half-second order tails: no run ends exactly on a limit."""
    events = []
    for i in range(40):
        o = f"{tag}-{i}"
        t = t0 + seconds(i * 12)
        events.append(event(o, "node_started", t, node="a", process="e2e",
                            segment="gold" if i % 4 == 0 else "default"))
        t += seconds(rng.choice([3, 7, 9, 14, 25]))
        events.append(event(o, "node_cancelled" if i % 10 == 7 else "node_completed", t, node="a", process="e2e"))
        events.append(event(o, "node_started", t, node="b", process="e2e"))
        if i % 13 == 5:
            continue  # b and the order stay open
        t += seconds(rng.choice([2, 4, 6, 10]))
        events.append(event(o, "node_completed", t, node="b", process="e2e"))
        t += seconds(rng.choice([1.5, 40.5]))
        events.append(event(o, "order_cancelled" if i % 9 == 4 else "order_completed", t, node=None,
                            process="e2e"))
    return sorted(events, key=lambda e: e["at"])


class Prometheus:
    def __init__(self, tmp, worker_port: int):
        self.port = free_port()
        self.dir = tmp
        config = {
            "global": {"scrape_interval": f"{SCRAPE:g}s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in sorted(RULES.glob("*.rules.yml"))],
            "scrape_configs": [{"job_name": "slamon",
                                "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]}],
        }
        (tmp / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = (tmp / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, q: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]["result"]

    def values(self, q: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {tuple(s["metric"].get(k, "") for k in labels): float(s["value"][1]) for s in self.query(q)}

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {(self.dir / 'prometheus.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def test_recording_rules_agree_with_replay(stack, tmp_path):
    started_at = time.monotonic()
    prefix = f"t{uuid.uuid4().hex[:8]}."
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "e2e.yaml").write_text(POLICY)
    w = Worker(worker_env(stack, prefix, free_port(), tmp_path / "data", SLAMON_POLICIES=str(pol)),
               tmp_path / "worker.log").start()
    prom = None
    try:
        w.wait_ready()
        prom = Prometheus(tmp_path, w.port)
        wait_for(prom.ready, 30, "prometheus to be ready")
        # two scrapes of the primed zero series before anything happens
        wait_for(lambda: prom.query('count_over_time(sla_runs_started_total{process="e2e",node="a",'
                                    'segment="default"}[1m]) >= 2'), 20, "two scrapes of the worker")
        first_scrape_before = time.monotonic()

        tag = f"pe{uuid.uuid4().hex[:6]}"
        events = scenario(tag, now() - seconds(700), random.Random(11))
        Topics(stack.kafka_bootstrap, prefix).produce(events)
        wait_for(lambda: w.metric("sla_events_total", {"process": "e2e"}) == len(events), 30,
                 "the worker to apply every event")

        path = tmp_path / "events.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
        r = subprocess.run([sys.executable, "-m", "monitor.cli", "replay", "--policies", str(pol), "--events",
                            str(path), "--now", utc(now()), "--json"], cwd=ROOT, capture_output=True)
        assert r.returncode == 0, r.stderr
        replay = orjson.loads(r.stdout)
        rows = {row["node"]: row for row in replay["summary"]}
        assert set(rows) == {"a", "b", "__order__"}
        replay_breaches = Counter(x["node"] for x in replay["warnings"] if x["kind"] == "commitment_breached")

        def live(metric: str, **labels: str) -> Counter:
            return Counter({n: int(w.metric(metric, {"process": "e2e", "node": n, **labels})) for n in rows})

        # The open runs crossed their limits minutes ago: the worker announces them on its next ticks. It may
        # announce more than the replay: these events are a backlog written minutes after their event time, and
        # a tick between a run's start and its (already written) completion may announce a crossing whose
        # instant came before the completion was written (DESIGN.md: under lag, warnings wait for events
        # written before the crossing instant only). Outcomes do not depend on this; crossings do, so the
        # breach rate is compared with the worker's own counters below, the attainments with the replay.
        try:
            wait_for(lambda: all(live("sla_crossings_total", kind="commitment_breached")[n] >= replay_breaches[n]
                                 for n in rows), 20, "the worker to announce the open runs' breaches")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: live {dict(live('sla_crossings_total', kind='commitment_breached'))}, "
                                 f"replay {dict(replay_breaches)}") from None
        time.sleep(1.5)  # two more ticks: nothing else is due
        breaches = live("sla_crossings_total", kind="commitment_breached")
        started = live("sla_runs_started_total")

        # Prometheus has scraped the final counters, and the 1h rules were evaluated after that scrape
        ended = sum(row[s] for row in rows.values() for s in (*COMPLETED, "cancelled"))
        wait_for(lambda: prom.values('sum(sla_run_outcomes_total{process="e2e"})') == {(): ended}
                 and prom.values('sum(sla_crossings_total{process="e2e",kind="commitment_breached"})')
                 == {(): sum(breaches.values())}, 20, "the final counters in Prometheus")
        time.sleep(2.5)

        got = {m: prom.values(f'process_node:{m}:ratio_1h{{process="e2e"}}', "node")
               for m in ("sla_commitment_attainment", "sla_tolerance_attainment", "sla_breach_rate",
                         "sla_cancellation_rate")}
        completed_1h = prom.values('process_node:sla_runs_completed:increase_1h{process="e2e"}', "node")
        # the rule was evaluated at most 1 s after the last scrape, which is at most 1.1 scrape intervals old
        sampled = time.monotonic() - first_scrape_before - 1.1 * SCRAPE - 1.0
        bound = 1 + 1.1 * SCRAPE / sampled
        for node, row in rows.items():
            completed = sum(row[s] for s in COMPLETED)
            assert started[node] == row["total"], (node, started)
            assert breaches[node] >= replay_breaches[node]
            want = {
                "sla_commitment_attainment": row["completed_normal"] / completed,
                "sla_tolerance_attainment": 1 - row["completed_warning"] / completed,
                "sla_breach_rate": breaches[node] / started[node],
                "sla_cancellation_rate": row["cancelled"] / (completed + row["cancelled"]),
            }
            for metric, value in want.items():
                assert got[metric][(node,)] == pytest.approx(value, abs=1e-9), (node, metric)
            assert completed - 1e-9 <= completed_1h[(node,)] <= completed * bound, (node, completed_1h, bound)

        # the process level pools the node runs a and b, not the order-level run
        a, b = rows["a"], rows["b"]
        pooled = prom.values('process:sla_commitment_attainment:ratio_1h{process="e2e"}')
        want = (a["completed_normal"] + b["completed_normal"]) / sum(a[s] + b[s] for s in COMPLETED)
        assert pooled[()] == pytest.approx(want, abs=1e-9)
        # the scenario exercises every state the ratios distinguish
        assert all(rows[n][s] for n in ("a", "b") for s in COMPLETED)
        assert rows["a"]["cancelled"] and rows["__order__"]["cancelled"] and rows["b"]["in_progress_warning"]
        assert time.monotonic() - started_at < 90
    finally:
        if prom is not None:
            prom.stop()
        assert w.stop() == 0, w.tail()
