"""Multi-host fail-over in Linux network namespaces: the broker and two workers on three "hosts" (namespaces) joined
by veth pairs on a bridge. While orders cross their limits, one worker's link is cut: the other worker takes its
partitions after the session timeout and announces every due warning; the link comes back: the cut worker rejoins
(or, fenced, exits with status 1 and is restarted by the test acting as its supervisor).

What is asserted, read `read_committed` as the README tells downstream readers: every warning the replay of the same
events says is due is announced, none false (same ids, crossing instants and states), none repeated. What is
measured and printed: the fail-over time, from the cut to the first warning for a moved partition that a
read_committed reader sees (announced by the survivor), with and without standby replicas.

Topology (root namespace: the bridge with .1, where this test, its producer and its readers run)::

    slamon-<tag>-kafka  eth0 10.231.N.2  broker (KafkaServer, plaintext listener on that address, port 9092)
    slamon-<tag>-a      eth0 10.231.N.3  worker a (web server on that address)
    slamon-<tag>-b      eth0 10.231.N.4  worker b
    the outer veth ends sl<tag>k / sl<tag>a / sl<tag>b are ports of the bridge slbr<tag>; the cut is
    `ip link set sl<tag>a down` (packets to and from a are dropped silently, no connection is reset)

Needs root and iproute2 (skipped otherwise). SLAMON_MULTIHOST_RUNS=N repeats each measurement N times.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from .live import ROOT, Topics, Worker, now, own_broker, seconds, wait_for, worker_env
from .test_live import POLICY, TICK, write_policies
from .test_recovery import Player, replay_warnings, stream_of_orders

pytestmark = pytest.mark.integration

RUNS = int(os.environ.get("SLAMON_MULTIHOST_RUNS", "1"))
# Kafka's default group.min.session.timeout.ms (6 s; our broker does not change it) is the floor
SESSION_TIMEOUT = 6
PARTITIONS = 4
WEB_PORT = 6066  # every host has its own network stack: no port clashes
KAFKA_PORT, CONTROLLER_PORT = 9092, 9093
LONGEST_LIMIT = 8  # seconds: the order-level tolerance of POLICY, the last crossing of any run

RESULTS: list[dict[str, Any]] = []


# --------------------------------------------------------------------------------------------- the network


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r


def namespaces_unavailable() -> str | None:
    """Why this machine cannot run the test (None: it can create a network namespace)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"slamon-probe-{uuid.uuid4().hex[:6]}"
    r = ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"`ip netns add` failed: {r.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


class Host:
    """A network namespace with one interface (eth0) whose outer veth end is a port of the bridge."""

    def __init__(self, netns: str, outer: str, address: str):
        self.netns, self.outer, self.address = netns, outer, address

    @property
    def prefix(self) -> tuple[str, ...]:
        """Runs a command in this host's namespace (`ip netns exec` execs it: the pid is the command's)."""
        return ("ip", "netns", "exec", self.netns)


class Network:
    """A bridge in the root namespace and hosts on it; `close` removes everything (also after a partial setup)."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.bridge = f"slbr{self.tag}"
        used = ip("-4", "route", "show").stdout + ip("-4", "addr", "show").stdout
        free = [n for n in random.sample(range(256), 256) if f"10.231.{n}." not in used]
        self.net = f"10.231.{free[0]}"
        self.hosts: dict[str, Host] = {}
        self.created_bridge = False

    def up(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        self.created_bridge = True
        ip("addr", "add", f"{self.net}.1/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> Host:
        host = Host(f"slamon-{self.tag}-{name}", f"sl{self.tag}{name[0]}", f"{self.net}.{2 + len(self.hosts)}")
        ip("netns", "add", host.netns)
        self.hosts[name] = host
        ip("-n", host.netns, "link", "set", "lo", "up")
        ip("link", "add", host.outer, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        ip("link", "set", host.outer, "master", self.bridge)
        ip("link", "set", host.outer, "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", host.netns, "link", "set", "eth0", "up")
        return host

    def cut(self, host: Host) -> None:
        ip("link", "set", host.outer, "down")

    def reconnect(self, host: Host) -> None:
        ip("link", "set", host.outer, "up")

    def close(self) -> None:
        """Kill what still runs in our namespaces (only our processes can be there), delete them (which deletes
        their veth pairs) and the bridge. Goes on past errors so that nothing is left behind."""
        problems = []
        for host in self.hosts.values():
            pids = ip("netns", "pids", host.netns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            deadline = time.monotonic() + 10
            while pids and time.monotonic() < deadline:
                pids = ip("netns", "pids", host.netns, check=False).stdout.split()
                time.sleep(0.05)
            for args in (("netns", "del", host.netns), ("link", "del", host.outer)):
                r = ip(*args, check=False)
                if r.returncode != 0 and "Cannot find" not in r.stderr and "No such" not in r.stderr \
                        and "does not exist" not in r.stderr:
                    problems.append(f"ip {' '.join(args)}: {r.stderr.strip()}")
        if self.created_bridge:
            r = ip("link", "del", self.bridge, check=False)
            if r.returncode != 0:
                problems.append(f"ip link del {self.bridge}: {r.stderr.strip()}")
        assert not problems, "; ".join(problems)


@pytest.fixture(scope="module")
def network():
    reason = namespaces_unavailable()
    if reason:
        pytest.skip(f"multi-host test skipped: {reason}")
    net = Network()
    try:
        net.up()
        for name in ("kafka", "a", "b"):
            net.add_host(name)
        yield net
    finally:
        net.close()


@pytest.fixture(scope="module")
def broker(network, tmp_path_factory):
    """A broker of its own in the kafka host, listening (and advertised) on that host's address."""
    from monitor.localstack.kafka_server import KafkaServer, runtime

    host = network.hosts["kafka"]
    server = KafkaServer(tmp_path_factory.mktemp("kafka"), KAFKA_PORT, CONTROLLER_PORT, runtime(),
                         host=host.address, wrapper=host.prefix)
    with own_broker(server, "Kafka (multi-host test)"):
        yield server
    if RESULTS:
        print("\nfail-over (cut -> first warning of a moved partition seen by a read_committed reader):")
        for r in RESULTS:
            print(f"  standby replicas {r['standby']}: {r['failover']:.2f} s (survivor ready with the moved "
                  f"partitions after {r['takeover']:.2f} s; first moved warning detected {r['detected']:.2f} s "
                  f"after the cut)")


# ----------------------------------------------------------------------------------------------- workers


class HostWorker(Worker):
    """A `slamon worker` in a host's namespace; its web server listens on the host's address."""

    def __init__(self, env: dict[str, str], log_path: Path, host: Host):
        super().__init__({**env, "SLAMON_WEB_HOST": host.address}, log_path)
        self.host = host
        self.exits: list[int] = []

    def start(self) -> HostWorker:
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen([*self.host.prefix, sys.executable, "-m", "monitor.cli", "worker"], cwd=ROOT,
                                     env={**os.environ, **self.env}, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{self.host.address}:{self.port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def supervise(self) -> None:
        """What a supervisor does: restart the worker when it ended with status 1 (fenced); fail on another."""
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            self.exits.append(code)
            assert code == 1, f"worker {self.host.netns} ended with {code}:\n{self.tail()}"
            self.start()


class Watcher(threading.Thread):
    """Reads sla.warnings read_committed while they are written, noting when each record became visible."""

    def __init__(self, topics: Topics, tag: str):
        super().__init__(daemon=True)
        self.topics, self.tag = topics, tag
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.started_reading = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.started_reading.set()

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        c = AIOKafkaConsumer(bootstrap_servers=self.topics.bootstrap, group_id=None, enable_auto_commit=False,
                             isolation_level="read_committed", fetch_max_wait_ms=100)
        await c.start()
        try:
            topic = self.topics.name("sla.warnings")
            tps = [TopicPartition(topic, p) for p in await Topics._partitions(c, topic)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            self.started_reading.set()
            while not self.stopping.is_set():
                batch = await c.getmany(timeout_ms=100)
                t = time.time()
                for msgs in batch.values():
                    for m in msgs:
                        w = orjson.loads(m.value)
                        if w.get("order_id", "").startswith(self.tag):
                            with self.lock:
                                self.seen.append((t, w))
        finally:
            await c.stop()

    def snapshot(self) -> list[tuple[float, dict[str, Any]]]:
        with self.lock:
            return list(self.seen)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def partition_of(order_id: str, partitions: int = PARTITIONS) -> int:
    """The events partition of an order: what the producer's default partitioner (murmur2, as Java's) chose."""
    from aiokafka.partitioner import murmur2

    return (murmur2(order_id.encode()) & 0x7FFFFFFF) % partitions


def epoch(instant: str) -> float:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(UTC).timestamp()


@pytest.fixture
def workers(network, broker, tmp_path):
    """Workers a and b in their hosts; afterwards every link is back up and both are stopped."""
    made: list[HostWorker] = []

    def make(name: str, prefix: str, pol: Path, **extra: str) -> HostWorker:
        stack = SimpleNamespace(kafka_bootstrap=broker.bootstrap, redis_url="redis://127.0.0.1:6379/0")  # unused
        w = HostWorker(worker_env(stack, prefix, WEB_PORT, tmp_path / f"data-{name}", SLAMON_POLICIES=str(pol),
                                  SLAMON_TICK_INTERVAL=str(TICK), SLAMON_SESSION_TIMEOUT=str(SESSION_TIMEOUT),
                                  SLAMON_PARTITIONS=str(PARTITIONS), **extra),
                       tmp_path / f"{name}.log", network.hosts[name])
        made.append(w)
        return w

    try:
        yield make
    finally:
        for w in made:
            network.reconnect(w.host)
        for w in made:
            w.stop(timeout=20)


@pytest.fixture
def watch(broker):
    """Start a Watcher of a prefix's warnings; stopped after the test."""
    made: list[Watcher] = []

    def start(topics: Topics, tag: str) -> Watcher:
        w = Watcher(topics, tag)
        made.append(w)
        w.start()
        assert w.started_reading.wait(30) and w.error is None, w.error
        return w

    try:
        yield start
    finally:
        for w in made:
            w.stop()


# -------------------------------------------------------------------------------------------------- the test


@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("standby", [0, 1])
def test_a_cut_off_worker_fails_over_and_rejoins_without_repeats(network, broker, workers, watch, tmp_path, standby,
                                                                 run):
    prefix = f"m{uuid.uuid4().hex[:8]}."
    pol = write_policies(tmp_path / "policies", POLICY)
    topics = Topics(broker.bootstrap, prefix)
    a = workers("a", prefix, pol, SLAMON_STANDBY_REPLICAS=str(standby)).start()
    b = workers("b", prefix, pol, SLAMON_STANDBY_REPLICAS=str(standby)).start()
    everything = set(range(PARTITIONS))

    def shared() -> bool:
        for w in (a, b):
            w.supervise()
        if not (a.ready() and b.ready()):
            return False
        pa, pb = set(a.owned()), set(b.owned())
        return bool(pa and pb and not pa & pb and pa | pb == everything)

    t_start = time.monotonic()
    wait_for(shared, 120, "both workers ready, sharing the partitions")
    startup = time.monotonic() - t_start
    watcher = watch(topics, tag := f"mh{uuid.uuid4().hex[:5]}")

    # phase 1: orders start every 0.25 s for 18 s; the cut comes once warnings flow from both workers
    events = stream_of_orders(tag, now() + seconds(1), 72, 0.25, random.Random(run * 2 + standby))
    player = Player(topics, events)
    player.start()
    moved = set(a.owned())
    assert moved and not moved & set(b.owned())

    def warned(parts: set[int], after: float = 0.0) -> list[tuple[float, dict]]:
        return [(t, w) for t, w in watcher.snapshot()
                if partition_of(w["order_id"]) in parts and epoch(w["detected_at"]) > after]

    wait_for(lambda: warned(moved) and warned(everything - moved), 30, "warnings from both workers")
    network.cut(a.host)
    t_cut = time.time()

    # the survivor takes a's partitions after the session timeout and announces what is due there
    def taken_over() -> float | None:
        b.supervise()
        return time.time() if b.ready() and set(b.owned()) == everything else None

    t_takeover = wait_for(taken_over, 90, "the survivor to own and recover every partition", interval=0.05)
    first = wait_for(lambda: warned(moved, after=t_cut), 60, "a warning of a moved partition from the survivor",
                     interval=0.05)
    t_first = min(t for t, _ in first)
    t_detected = min(epoch(w["detected_at"]) for _, w in first)
    assert a.proc.poll() is None or a.proc.returncode == 1, a.tail()
    result = {"standby": standby, "run": run, "failover": t_first - t_cut, "takeover": t_takeover - t_cut,
              "detected": t_detected - t_cut}

    # the link comes back: a rejoins, or finds itself fenced, ends with status 1 and is restarted
    network.reconnect(a.host)
    t_back = time.monotonic()
    wait_for(shared, 120, "the reconnected worker to rejoin and the partitions to be shared again")
    rejoin = time.monotonic() - t_back
    crossings_a, exits_a = a.metric("sla_crossings_total"), len(a.exits)

    # phase 2: orders for 4 s more, announced by both workers
    player.join(60)
    assert player.error is None, player.error
    more = stream_of_orders(f"{tag}x", now() + seconds(0.5), 16, 0.25, random.Random(100 + run))
    events += more
    player = Player(topics, more)
    player.start()
    player.join(60)
    assert player.error is None, player.error

    last_start = max(datetime.fromisoformat(e["at"]) for e in events if e["type"] == "node_started")
    judge_at = last_start + seconds(LONGEST_LIMIT + 1)  # after every crossing of every run
    replayed = {x["warning_id"]: x for x in replay_warnings(pol, events, judge_at, tmp_path)["warnings"]}
    assert len(replayed) > 100

    def all_seen() -> bool:
        for w in (a, b):
            w.supervise()
        return now() > judge_at + seconds(2 * TICK) and {w["warning_id"] for _, w in watcher.snapshot()} >= set(replayed)

    try:
        wait_for(all_seen, 60, "every warning of the replay")
    except AssertionError as exc:
        missing = set(replayed) - {w["warning_id"] for _, w in watcher.snapshot()}
        orders = {m.split(":")[0] for m in missing}
        by_events = Counter(partition_of(o) for o in orders)
        by_warnings = Counter(partition_of(o, 6) for o in orders)
        raise AssertionError(
            f"{exc}: {len(missing)} missing of {len(orders)} orders, e.g. {sorted(missing)[:5]}; orders by events "
            f"partition {dict(by_events)}, by sla.warnings partition {dict(by_warnings)}; "
            f"a /readyz {a.get('/readyz')}, b /readyz {b.get('/readyz')}\n"
            f"a:\n{a.tail(15)}\nb:\n{b.tail(15)}") from None
    watcher.stop()
    assert watcher.error is None, watcher.error
    # what the rejoined worker announced since (its counters start again at 0 when it was restarted meanwhile)
    crossings_a = a.metric("sla_crossings_total") - (crossings_a if len(a.exits) == exits_a else 0)

    # a fresh read_committed reader: every due warning, none false, none repeated, same instants and states
    live = [orjson.loads(v) for _, v in topics.read("sla.warnings") if orjson.loads(v)["order_id"].startswith(tag)]
    counts = Counter(w["warning_id"] for w in live)
    assert set(counts) - set(replayed) == set(), f"false warnings: {sorted(set(counts) - set(replayed))[:5]}"
    assert set(replayed) - set(counts) == set(), f"missing warnings: {sorted(set(replayed) - set(counts))[:5]}"
    repeated = {k: n for k, n in counts.items() if n > 1}
    assert not repeated, f"{len(repeated)} warnings announced more than once, e.g. {sorted(repeated)[:5]}"
    for w in live:
        want = replayed[w["warning_id"]]
        assert (w["crossed_at"], w["state"]) == (want["crossed_at"], want["state"]), (w, want)
    assert crossings_a > 0, "the rejoined worker announced nothing after it came back"

    RESULTS.append(result)
    print(f"\nstandby replicas {standby}, run {run}: start-up {startup:.1f} s; cut {sorted(moved)} off; "
          f"survivor ready with them after {result['takeover']:.2f} s; first moved warning detected after "
          f"{result['detected']:.2f} s, seen by a read_committed reader after {result['failover']:.2f} s; "
          f"rejoined {rejoin:.1f} s after reconnecting (exits of the cut worker: {a.exits or 'none'}); "
          f"{len(replayed)} warnings, 0 missing, 0 false, 0 repeated")
