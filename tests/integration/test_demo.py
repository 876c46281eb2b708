"""`make demo` against the real thing, each test on a stack of its own (SLAMON_STACK_DIR in a temporary dir).

What a newcomer does: `make demo` twice in a row, and stopping it with Ctrl-C (SIGINT to the terminal's process
group), a closed terminal (SIGHUP to the group) or `timeout` (SIGTERM to the group, and again through make). After
each, no process of ours may be left: none of the pids the demo recorded in demo.json and state.json, and no process
whose command line, working directory or environment mentions the stack dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.localstack import stack as localstack
from monitor.localstack.procs import alive

from .live import ROOT, wait_for

pytestmark = pytest.mark.integration

WARNING = re.compile(r"^\d\d:\d\d:\d\d  (APPROACHING|COMMITMENT BREACHED|TOLERANCE BREACHED|RESOLVED) ", re.M)
READY_TIMEOUT = 90.0  # stack start + worker ready, on a busy 2-core machine
STOP_TIMEOUT = 60.0  # children (30 s at most) and the stack


def make_demo(*demo_args: str) -> list[str]:
    # `-o install`: the recipe of `make demo` without `make install` in front (no pip run inside a test)
    return ["make", "--no-print-directory", "-o", "install", "demo", f"DEMO_ARGS={' '.join(demo_args)}"]


def demo_env(sdir: Path) -> dict[str, str]:
    return {**os.environ, "SLAMON_STACK_DIR": str(sdir), "SLAMON_WEB_PORT": "0", "PYTHONUNBUFFERED": "1"}


def processes_of(sdir: Path) -> dict[int, str]:
    """Live processes whose command line, working directory or environment mentions `sdir`."""
    needle = str(sdir)
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (entry / "environ").read_bytes().decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z" and (needle in cmd or needle in env or cwd.startswith(needle)):
            found[int(entry.name)] = cmd.strip()
    return found


def demo_record(sdir: Path) -> dict | None:
    try:
        return json.loads((sdir / "demo.json").read_text())
    except (OSError, ValueError):
        return None


def recorded_pids(sdir: Path) -> dict[str, tuple[int, int | None]]:
    """name -> (pid, start time) of the demo, its children and the stack's servers, as recorded now."""
    pids = {}
    demo = demo_record(sdir) or {}
    if demo.get("pid"):
        pids["demo"] = (demo["pid"], demo.get("start_time"))
    for name, child in (demo.get("children") or {}).items():
        pids[name] = (child["pid"], child.get("start_time"))
    for key, rec in (localstack.read_state(sdir) or {}).items():
        if isinstance(rec, dict) and rec.get("pid"):
            pids[key] = (rec["pid"], rec.get("start_time"))
    return pids


def assert_nothing_left(sdir: Path, pids: dict[str, tuple[int, int | None]]) -> None:
    running = {name: pid for name, (pid, started) in pids.items() if alive(pid, started)}
    assert not running, f"still running after the demo: {running}"
    assert not processes_of(sdir), f"processes mentioning {sdir}: {processes_of(sdir)}"


def all_started(sdir: Path, out: Path) -> dict[str, tuple[int, int | None]] | None:
    """The recorded pids once the demo generates orders (every child and the stack started)."""
    return recorded_pids(sdir) if "demo: generating orders" in out.read_text() else None


def _default_stop_signals() -> None:
    """In the child: SIGINT, SIGQUIT, SIGTERM and SIGHUP at their defaults, as an interactive shell starts a
    foreground job. A test run started in the background by a non-interactive shell (`.ci/run &`) inherits SIGINT
    and SIGQUIT ignored, and the demo, rightly, keeps a signal ignored that it started with."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


class Demo:
    """`make demo` in a process group of its own, as a shell runs a foreground job."""

    def __init__(self, tmp_path: Path, cmd: list[str]):
        self.sdir = tmp_path / "stack"
        self.out = tmp_path / "demo.out"
        with self.out.open("wb") as f:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=demo_env(self.sdir), stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_default_stop_signals)

    def output(self) -> str:
        return self.out.read_text()

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the demo did not stop within {timeout:.0f}s:\n{self.output()}") from None

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        kill_leftovers(self.sdir)


def kill_leftovers(sdir: Path) -> None:
    """Whatever a test's outcome: nothing of it may outlive it."""
    for pid in processes_of(sdir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    localstack.down(sdir, progress=lambda _m: None)


@pytest.fixture
def demo_run(tmp_path):
    runs: list[Demo] = []

    def start(cmd: list[str], name: str = "run") -> Demo:
        (tmp_path / name).mkdir(exist_ok=True)
        d = Demo(tmp_path / name, cmd)
        runs.append(d)
        return d

    yield start
    for d in runs:
        d.cleanup()


def test_make_demo_twice_in_a_row_shows_warnings_and_leaves_nothing(tmp_path):
    sdir = tmp_path / "stack"
    try:
        for run in (1, 2):  # each run starts a new stack and removes it: the second must not meet the first's store
            res = subprocess.run(make_demo("--duration", "15"), cwd=ROOT, env=demo_env(sdir),
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 timeout=READY_TIMEOUT + 15 + STOP_TIMEOUT)
            out = res.stdout + res.stderr
            assert res.returncode == 0, f"run {run}:\n{out}\n{(sdir / 'demo-worker.log').read_text()[-3000:]}"
            assert WARNING.search(out), f"run {run} showed no warning:\n{out}"
            assert "stack up in" in out and "removed the stack's data" in out, out
            assert_nothing_left(sdir, {})
            assert not (sdir / "demo.json").exists() and not list((sdir / "demo").iterdir())
    finally:
        kill_leftovers(sdir)


def test_timeout_sigterm_to_make_demo_stops_everything(demo_run):
    d = demo_run(["timeout", "-s", "TERM", "35", *make_demo()])
    pids: dict[str, tuple[int, int | None]] = {}

    def exited() -> bool:
        pids.update(recorded_pids(d.sdir))
        return d.proc.poll() is not None

    wait_for(exited, 35 + STOP_TIMEOUT, "timeout to stop `make demo`")
    assert "demo: generating orders" in d.output(), "stopped before it was all up: the machine is too slow"
    assert set(pids) >= {"demo", "worker", "board", "kafka", "redis"}
    assert d.proc.returncode == 124, d.output()  # timeout's status once it had to stop the command
    assert "demo: SIGTERM: stopping" in d.output()
    assert_nothing_left(d.sdir, pids)
    assert not (d.sdir / "state.json").exists(), "the stack the demo started must be gone"


def test_sighup_to_make_demo_while_the_worker_starts_stops_everything(demo_run):
    d = demo_run(make_demo())
    pids = wait_for(lambda: (p := recorded_pids(d.sdir)).get("worker") and p, READY_TIMEOUT,
                    "the demo to start its worker")
    os.killpg(d.proc.pid, signal.SIGHUP)  # what a closed terminal does
    d.wait()
    assert "demo: SIGHUP: stopping" in d.output()
    assert_nothing_left(d.sdir, pids)
    assert not (d.sdir / "state.json").exists()


def test_ctrl_c_stops_the_demo_and_leaves_a_reused_stack_running(demo_run, tmp_path):
    stack = localstack.up(tmp_path / "run" / "stack", progress=lambda _m: None)
    d = demo_run(make_demo())
    pids = wait_for(lambda: all_started(d.sdir, d.out), READY_TIMEOUT, "the demo to generate orders")
    # the board and the notifier each have a web port of their own, none the worker's
    ports = {name: child["port"] for name, child in demo_record(d.sdir)["children"].items() if name != "alertmanager"}
    assert len(set(ports.values())) == len(ports) and all(ports.values()), ports
    for name, port in ports.items():
        environ = Path(f"/proc/{pids[name][0]}/environ").read_bytes().split(b"\0")
        assert f"SLAMON_WEB_PORT={port}".encode() in environ, name
    assert f"board metrics: http://127.0.0.1:{ports['board']}/metrics" in d.output()
    wait_for(lambda: WARNING.search(d.output()), 60, "a warning")

    os.killpg(d.proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
    d.wait()
    assert "demo: SIGINT: stopping" in d.output()
    children = {name: pid for name, pid in pids.items() if name not in ("kafka", "redis")}
    running = {name: pid for name, (pid, started) in children.items() if alive(pid, started)}
    assert not running, f"still running after the demo: {running}"
    assert localstack.status(d.sdir)[1] == [], "a stack the demo only reused keeps running"
    assert localstack.StackInfo.from_state(localstack.read_state(d.sdir), d.sdir) == stack
    localstack.down(d.sdir, progress=lambda _m: None)
    assert_nothing_left(d.sdir, pids)


def test_sigkill_of_the_demo_takes_its_children_along_and_the_next_demo_removes_its_stack(demo_run):
    d = demo_run([sys.executable, "-m", "monitor.cli", "demo"])
    pids = wait_for(lambda: (p := recorded_pids(d.sdir)).get("board") and p, READY_TIMEOUT,
                    "the demo to start its children")
    os.kill(pids["demo"][0], signal.SIGKILL)
    d.proc.wait(10)
    children = {name: pid for name, pid in pids.items() if name not in ("demo", "kafka", "redis")}
    wait_for(lambda: not any(alive(pid, started) for pid, started in children.values()), 30,
             f"the children to die with the demo: {children}")
    assert localstack.status(d.sdir)[1] == [], "the stack outlives a demo killed with SIGKILL"

    again = demo_run([sys.executable, "-m", "monitor.cli", "demo", "--duration", "1"], "run")
    assert again.wait(READY_TIMEOUT + STOP_TIMEOUT) == 0, again.output()
    assert "removed the stack's data" in again.output(), "the next demo takes the orphaned stack over"
    assert_nothing_left(d.sdir, pids)
