"""`slamon demo`: the local stack, one worker, the board and the notifier, generated orders, warnings live.

Its files are in the stack's state dir (`.stack/`, or $SLAMON_STACK_DIR):

    demo.json                  the running demo: its pid, its children's pids and ports, what it did to the stack
    demo-*.log                 the children's logs
    demo/<Kafka cluster id>/   the worker's data (RocksDB) and Alertmanager's storage. They hold offsets of that
                               Kafka cluster's topics, so a recreated stack (new cluster id) never meets them.

SIGINT (Ctrl-C), SIGTERM and SIGHUP all stop everything the demo started: its children, and the stack when the
demo started it (a stack it only reused keeps running). The children also get SIGTERM if the demo itself dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..catalogue import EVENTS, topic_names
from ..localstack import StackError, StackInfo, down, up
from ..localstack.procs import alive, free_ports, start_time, stop
from ..settings import Settings
from .generator import Generator
from .view import live_view

ROOT = Path(__file__).resolve().parent.parent.parent
POLICIES = ROOT / "deploy" / "demo" / "policies"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STATE_FILE = "demo.json"
READY_TIMEOUT = 120.0
CHILD_STOP_TIMEOUT = 30.0


class Stopped(KeyboardInterrupt):
    """A stop signal arrived (a KeyboardInterrupt, so that code which cleans up on Ctrl-C does so here too)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """Makes SIGINT, SIGTERM and SIGHUP stop the demo as Ctrl-C does: the first one raises Stopped (or calls
    `on_stop` while that is set); any later one, and any once `stopping` is set, is ignored, so that the cleanup
    is never cut short (`timeout make demo` delivers SIGTERM twice: to the process group and through make). A
    signal ignored when the demo started (SIGHUP under nohup) stays ignored."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.stopping = False
        self.on_stop: Callable[[], None] | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if previous != signal.SIG_IGN:
                self._saved[sig] = previous
                signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._saved.items():
            signal.signal(sig, previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.stopping or self.signum is not None:
            return
        self.signum = signum
        if self.on_stop is not None:
            with contextlib.suppress(RuntimeError):  # the event loop is closing: stop the plain way
                self.on_stop()
                return
        raise Stopped(signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


def _child_setup() -> Callable[[], None]:
    """A preexec_fn: unblock the stop signals (blocked in the demo around a spawn) and make the child get SIGTERM
    when the demo dies, even by SIGKILL (Linux only)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before the fork
    except (OSError, AttributeError):
        prctl = None

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if prctl is not None:
            prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG

    return setup


class Demo:
    """What one demo started, so that `stop` undoes exactly that."""

    def __init__(self) -> None:
        self.info: StackInfo | None = None
        self.home: Path | None = None
        self.children: dict[str, subprocess.Popen] = {}
        self.record: dict[str, Any] = {"pid": os.getpid(), "start_time": start_time(os.getpid()), "children": {}}

    @property
    def sdir(self) -> Path:
        assert self.info is not None
        return self.info.state_dir

    def start_stack(self) -> StackInfo:
        info = self.info = up()
        # what to do with the stack at the end: "created" remove it, "started" stop it (data kept), "reused" nothing
        owned = "created" if info.created else "started" if set(info.started) == {"kafka", "redis"} else "reused"
        earlier = _stop_stale_demo(info.state_dir)
        if earlier.get("cluster_id") == info.cluster_id and earlier.get("stack") in ("created", "started"):
            owned = earlier["stack"]  # a demo killed with SIGKILL left its stack running: this one takes it over
        self.record.update(stack=owned, cluster_id=info.cluster_id)
        root = info.state_dir / "demo"
        self.home = root / (info.cluster_id or f"unknown-{os.getpid()}")
        # a worker store made against another Kafka cluster holds offsets that cluster's topics had: never reuse it
        stale = [d for d in root.glob("*") if d != self.home]
        stale += [info.state_dir / "demo-data", info.state_dir / "demo-alertmanager"]  # the layout before this one
        for d in stale:
            shutil.rmtree(d, ignore_errors=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_record()
        return info

    def spawn(self, name: str, args: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
        # A stop signal must not land between the child's start and its registration (the child would be left
        # behind): the stop signals wait, blocked, until the child is recorded; the child unblocks them.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            with (self.sdir / f"demo-{name}.log").open("ab") as log:
                p = subprocess.Popen(args, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_child_setup())
            self.children[name] = p
            self.record["children"][name] = {"pid": p.pid, "start_time": start_time(p.pid), "port": port}
            self._write_record()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return p

    def _write_record(self) -> None:
        path = self.sdir / STATE_FILE
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.record, indent=1) + "\n")
        os.replace(tmp, path)

    def stop(self) -> None:
        """Stop the children (SIGTERM together, SIGKILL after CHILD_STOP_TIMEOUT), then the stack if this demo
        started it: a stack it created is removed with its data, one it restarted keeps its data."""
        for child in reversed(self.children.values()):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + CHILD_STOP_TIMEOUT
        for name, child in self.children.items():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"demo: the {name} did not stop within {CHILD_STOP_TIMEOUT:.0f}s: killing it", flush=True)
                child.kill()
                child.wait()
        if self.info is None:
            return
        if self.record.get("stack") == "created":
            down(self.sdir)
            if self.home:
                shutil.rmtree(self.home, ignore_errors=True)
        elif self.record.get("stack") == "started":
            down(self.sdir, keep_data=True)
        with contextlib.suppress(OSError, ValueError):
            if json.loads((self.sdir / STATE_FILE).read_text()).get("pid") == os.getpid():
                (self.sdir / STATE_FILE).unlink()


def _stop_stale_demo(sdir: Path) -> dict[str, Any]:
    """Refuse to run next to a live demo on the same stack; stop what a dead one (SIGKILL) may have left of its
    children, and return its record ({} if there is none)."""
    try:
        old = json.loads((sdir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if old.get("pid") != os.getpid() and alive(old.get("pid"), old.get("start_time")):
        raise StackError(f"a demo is already running on the stack in {sdir} (pid {old['pid']}); stop it first")
    for name, child in (old.get("children") or {}).items():
        stop(child.get("pid"), child.get("start_time"), name=f"the {name} of an earlier demo", timeout=10)
    return old


def run_demo(rate: float, duration: float, web_port: int, seed: int | None) -> int:
    """The whole demo; returns the exit status. SIGINT, SIGTERM and SIGHUP stop everything it started."""
    demo = Demo()
    with StopSignals() as signals:
        try:
            return _run(demo, signals, rate, duration, web_port, seed)
        except Stopped:
            return 0
        except StackError as e:
            print(f"demo: error: {e}", file=sys.stderr, flush=True)
            return 1
        finally:
            signals.stopping = True
            if signals.signum:
                print(f"\ndemo: {signals.name}: stopping", flush=True)
            demo.stop()


def _run(demo: Demo, signals: StopSignals, rate: float, duration: float, web_port: int, seed: int | None) -> int:
    info = demo.start_stack()
    assert demo.home is not None
    port, board_port, notifier_port, am_port = free_ports(4)
    port = web_port or port
    env = {**os.environ, **info.env, "SLAMON_TOPIC_PREFIX": "demo.", "SLAMON_APP_ID": "slamon-demo",
           "SLAMON_POLICIES": str(POLICIES), "SLAMON_TICK_INTERVAL": "0.5", "SLAMON_WEB_PORT": str(port),
           "SLAMON_DATA_DIR": str(demo.home / "worker"), "SLAMON_STORE": os.environ.get("SLAMON_STORE", "rocksdb://"),
           "SLAMON_API_TOKEN": os.environ.get("SLAMON_API_TOKEN", "demo-token")}
    cli = [sys.executable, "-m", "monitor.cli"]
    am_exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if am_exe:
        env["SLAMON_ALERTMANAGER_URL"] = f"http://127.0.0.1:{am_port}"
        demo.spawn("alertmanager", [am_exe, f"--config.file={ROOT / 'deploy/alertmanager/alertmanager.yml'}",
                                    f"--storage.path={demo.home / 'alertmanager'}",
                                    f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                   env, am_port)
    print(f"demo: starting a worker, the board{' and the notifier' if am_exe else ''} "
          f"(logs: {info.state_dir}/demo-*.log)", flush=True)
    worker = demo.spawn("worker", [*cli, "worker"], env, port)
    # each child its own web port (/metrics, /healthz): they must not collide with the worker's
    demo.spawn("board", [*cli, "board"], {**env, "SLAMON_WEB_PORT": str(board_port)}, board_port)
    if am_exe:
        demo.spawn("notifier", [*cli, "notifier", "--lease", "60", "--resend", "15"],
                   {**env, "SLAMON_WEB_PORT": str(notifier_port)}, notifier_port)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if worker.poll() is not None:
            print(f"demo: the worker exited ({worker.returncode}); see {info.state_dir / 'demo-worker.log'}",
                  file=sys.stderr, flush=True)
            return 1
        with contextlib.suppress(OSError):
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
                break
        if time.monotonic() > deadline:
            print(f"demo: the worker did not become ready in {READY_TIMEOUT:.0f} s", file=sys.stderr, flush=True)
            return 1
        time.sleep(0.5)
    for name, child in demo.children.items():
        if child.poll() is not None:
            print(f"demo: warning: the {name} exited ({child.returncode}); see {info.state_dir / f'demo-{name}.log'}",
                  file=sys.stderr, flush=True)
    print(f"demo: worker ready. Metrics: http://127.0.0.1:{port}/metrics  Readiness: "
          f"http://127.0.0.1:{port}/readyz", flush=True)
    print(f"demo: board metrics: http://127.0.0.1:{board_port}/metrics"
          + (f"  notifier metrics: http://127.0.0.1:{notifier_port}/metrics" if am_exe else ""), flush=True)
    if am_exe:
        print(f"demo: alerts in Alertmanager: http://127.0.0.1:{am_port}/#/alerts "
              f"(API: http://127.0.0.1:{am_port}/api/v2/alerts)", flush=True)
    print(f"demo: the breach board: curl -H 'Authorization: Bearer {env['SLAMON_API_TOKEN']}' "
          f"'http://127.0.0.1:{port}/api/breaches?limit=5'", flush=True)
    print("demo: generating orders (Ctrl-C to stop). Warnings as they happen "
          "(crossed at, kind, process/node, order, elapsed, limit, owner, detection delay):\n", flush=True)
    asyncio.run(_generate_and_show(Settings.from_env(env), signals, rate, duration, seed))
    return 0


async def _generate_and_show(settings: Settings, signals: StopSignals, rate: float, duration: float,
                             seed: int | None) -> None:
    gen = Generator(settings, topic_names(settings.topic_prefix)[EVENTS], random.Random(seed))
    tasks = [asyncio.create_task(gen.run(rate)),
             asyncio.create_task(live_view(settings, sys.stdout.isatty()))]
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals.on_stop = lambda: loop.call_soon_threadsafe(stopped.set)
    waiter = asyncio.create_task(stopped.wait())
    try:
        await asyncio.wait([*tasks, waiter], timeout=duration or None, return_when=asyncio.FIRST_COMPLETED)
    finally:
        signals.on_stop = None
        for t in (*tasks, waiter):
            t.cancel()
        await asyncio.gather(*tasks, waiter, return_exceptions=True)
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception():
                raise t.exception()  # type: ignore[misc]
        print(f"\ndemo: {gen.n} orders, {gen.sent} events sent", flush=True)
