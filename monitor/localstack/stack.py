"""The local stack: one Kafka broker+controller and one Redis on free loopback ports, described by a state dir.

    <state dir>/state.json   pids (with start times), ports, versions: what `up` started and `down` stops
    <state dir>/env          SLAMON_KAFKA_BOOTSTRAP=... and SLAMON_REDIS_URL=... (shell-sourceable)
    <state dir>/kafka/       server.properties, data/, kafka.log (the broker's working directory)
    <state dir>/redis/       redis.log, AOF files if enabled (Redis' working directory)

The state dir is `.stack/` at the repo root unless `$SLAMON_STACK_DIR` or an explicit `state_dir` says otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import kafka_jars, kafka_server, paths, redis_server
from .kafka_server import KafkaServer
from .procs import (
    LOOPBACK,
    StackError,
    alive,
    free_ports,
    port_open,
    processes_in,
    say,
    start_time,
    stop,
    wait_until,
)
from .redis_server import RedisServer

Progress = Callable[[str], None]

STATE_FILE = "state.json"
ENV_FILE = "env"
STATE_FORMAT = 1
KAFKA_STOP_TIMEOUT = 30.0
REDIS_START_TIMEOUT = 15.0
REDIS_STOP_TIMEOUT = 10.0
SESSION_PREFIX = "session-"


@dataclass(frozen=True)
class StackInfo:
    """Where the running stack listens, and what `down` needs to stop it."""

    kafka_bootstrap: str
    redis_url: str
    state_dir: Path
    kafka_pid: int
    redis_pid: int
    kafka_version: str
    redis_aof: bool = False
    reused: bool = field(default=False, compare=False)

    @property
    def env(self) -> dict[str, str]:
        return {"SLAMON_KAFKA_BOOTSTRAP": self.kafka_bootstrap, "SLAMON_REDIS_URL": self.redis_url}

    @classmethod
    def from_state(cls, state: dict[str, Any], state_dir: Path, reused: bool = False) -> StackInfo:
        return cls(
            kafka_bootstrap=f"{LOOPBACK}:{state['kafka']['port']}",
            redis_url=f"redis://{LOOPBACK}:{state['redis']['port']}/0",
            state_dir=state_dir,
            kafka_pid=state["kafka"]["pid"],
            redis_pid=state["redis"]["pid"],
            kafka_version=state["kafka"]["version"],
            redis_aof=bool(state["redis"].get("aof")),
            reused=reused,
        )


# ------------------------------------------------------------------------------------------- state files


@contextlib.contextmanager
def _locked(sdir: Path) -> Iterator[None]:
    """One `up`/`down` at a time per state dir (make stack-up and a pytest session may race)."""
    sdir.mkdir(parents=True, exist_ok=True)
    with open(sdir / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_state(state_dir: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    try:
        state = json.loads((paths.stack_dir(state_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("format") == STATE_FORMAT else None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_state(sdir: Path, state: dict[str, Any]) -> None:
    _write_atomic(sdir / STATE_FILE, json.dumps(state, indent=1) + "\n")


def _write_env(info: StackInfo) -> None:
    _write_atomic(info.state_dir / ENV_FILE, "".join(f"{k}={v}\n" for k, v in info.env.items()))


def _remove_state(sdir: Path) -> None:
    for name in (STATE_FILE, ENV_FILE):
        with contextlib.suppress(FileNotFoundError):
            (sdir / name).unlink()


# ---------------------------------------------------------------------------------------------- health


def problems(state: dict[str, Any] | None, probe_timeout: float = 5.0) -> list[str]:
    """Why the stack described by `state` is not usable ([] = healthy: processes alive and answering)."""
    if not state or "kafka" not in state or "redis" not in state:
        return ["no stack recorded"]
    found = []
    k, r = state["kafka"], state["redis"]
    if k.get("version") != kafka_jars.kafka_version():
        found.append(f"Kafka {k.get('version')} runs but {kafka_jars.kafka_version()} is pinned")
    if not alive(k.get("pid"), k.get("start_time")):
        found.append(f"Kafka (pid {k.get('pid')}) is not running")
    elif not kafka_server.probe(f"{LOOPBACK}:{k['port']}", timeout=probe_timeout):
        found.append(f"Kafka on {LOOPBACK}:{k['port']} does not answer a metadata request")
    if not alive(r.get("pid"), r.get("start_time")):
        found.append(f"Redis (pid {r.get('pid')}) is not running")
    elif not redis_server.ping(f"redis://{LOOPBACK}:{r['port']}/0", timeout=probe_timeout):
        found.append(f"Redis on {LOOPBACK}:{r['port']} does not answer PING")
    return found


def status(state_dir: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any] | None, list[str]]:
    """(recorded state or None, problems) of the stack in `state_dir`."""
    state = read_state(state_dir)
    return state, (problems(state) if state else ["no stack recorded"])


# ------------------------------------------------------------------------------------------------ up/down


def up(state_dir: str | os.PathLike[str] | None = None, *, redis_aof: bool = False,
       timeout: float | None = None, progress: Progress = say) -> StackInfo:
    """Start the stack, or reuse the healthy one already described by `state_dir` (idempotent).

    Writes `<state dir>/env`. Anything stale left by an earlier stack in this dir is stopped first.
    """
    sdir = paths.stack_dir(state_dir)
    with _locked(sdir):
        state = read_state(sdir)
        if state:
            found = problems(state)
            if not found and bool(state["redis"].get("aof")) != redis_aof:
                found = [f"Redis AOF is {'on' if state['redis'].get('aof') else 'off'}, "
                         f"{'on' if redis_aof else 'off'} was asked for"]
            if not found:
                info = StackInfo.from_state(state, sdir, reused=True)
                _write_env(info)
                progress(f"reusing the running stack: Kafka {info.kafka_bootstrap}, Redis {info.redis_url}")
                return info
            progress("replacing the stack recorded in {}: {}".format(sdir, "; ".join(found)))
        _stop_everything(sdir, state, progress)
        rt = kafka_server.runtime(progress)
        for attempt in range(3):
            try:
                return _start(sdir, rt, redis_aof, timeout or paths.kafka_start_timeout(), progress)
            except StackError as e:
                if "Address already in use" not in str(e) or attempt == 2:
                    raise
                progress("a chosen port was taken meanwhile; retrying on other ports")
        raise AssertionError("unreachable")


def _start(sdir: Path, rt: kafka_server.Runtime, redis_aof: bool, timeout: float, progress: Progress) -> StackInfo:
    t0 = time.monotonic()
    for name in ("kafka", "redis"):
        shutil.rmtree(sdir / name, ignore_errors=True)
    _remove_state(sdir)
    kafka_port, controller_port, redis_port = free_ports(3)
    redis = RedisServer(sdir / "redis", redis_port, aof=redis_aof)
    kafka = KafkaServer(sdir / "kafka", kafka_port, controller_port, rt)
    version = rt.version
    state: dict[str, Any] = {"format": STATE_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        progress(f"starting Redis on {redis.url} and Kafka {version} on {kafka.bootstrap}...")
        redis_proc = redis.start()
        state["redis"] = {"pid": redis_proc.pid, "start_time": start_time(redis_proc.pid), "port": redis_port,
                          "aof": redis_aof, "dir": str(redis.directory)}
        _write_state(sdir, state)  # recorded at once, so that `down` finds it even if we die here
        kafka.directory.mkdir(parents=True, exist_ok=True)
        kafka.prepare()  # server.properties and a formatted KRaft log dir
        kafka_proc = kafka.start()
        state["kafka"] = {"pid": kafka_proc.pid, "start_time": start_time(kafka_proc.pid), "port": kafka_port,
                          "controller_port": controller_port, "version": version, "dir": str(kafka.directory),
                          "log": str(kafka.log_path)}
        _write_state(sdir, state)
        redis.wait_ready(redis_proc.pid, REDIS_START_TIMEOUT)
        kafka.wait_ready(kafka_proc.pid, timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            _stop_everything(sdir, state, progress=lambda _m: None)
        raise
    info = StackInfo.from_state(state, sdir)
    _write_env(info)
    progress(f"stack up in {time.monotonic() - t0:.1f}s: Kafka {info.kafka_bootstrap}, Redis {info.redis_url} "
             f"(env in {sdir / ENV_FILE})")
    return info


def down(state_dir: str | os.PathLike[str] | None = None, *, progress: Progress = say) -> bool:
    """Stop what the stack in `state_dir` started; True if something was running. Nothing running is fine."""
    sdir = paths.stack_dir(state_dir)
    if not sdir.exists():  # e.g. removed by `make clean` while the servers ran: look for them anyway
        stopped = _stop_everything(sdir, None, progress)
    else:
        with _locked(sdir):
            stopped = _stop_everything(sdir, read_state(sdir), progress)
    if not stopped:
        progress(f"nothing running in {sdir}")
    return stopped


def _stop_everything(sdir: Path, state: dict[str, Any] | None, progress: Progress) -> bool:
    """Stop the recorded servers, then any server still running in this dir's kafka/ or redis/ (a lost or
    half-written state.json); check their ports are closed; forget the state."""
    stopped = False
    ports = []
    plan = [("kafka", "Kafka", ("java",), KAFKA_STOP_TIMEOUT),
            ("redis", "Redis", redis_server.EXE_NAMES, REDIS_STOP_TIMEOUT)]
    for key, name, exes, timeout in plan:
        rec = (state or {}).get(key) or {}
        ports += [p for p in (rec.get("port"), rec.get("controller_port")) if p]
        if rec.get("pid") and alive(rec["pid"], rec.get("start_time")):
            progress(f"stopping {name} (pid {rec['pid']})...")
            stopped |= stop(rec["pid"], rec.get("start_time"), name=name, timeout=timeout, progress=progress)
        for pid in processes_in(sdir / key, exes):
            progress(f"stopping a leftover {name} (pid {pid}) running in {sdir / key}...")
            stopped |= stop(pid, start_time(pid), name=name, timeout=timeout, progress=progress)
    for port in ports:
        if not wait_until(lambda p=port: not port_open(p), 5.0):
            progress(f"warning: {LOOPBACK}:{port} still accepts connections after stopping the stack")
    if sdir.exists():
        _remove_state(sdir)
    return stopped


# ------------------------------------------------------------------------------------- test sessions


@contextlib.contextmanager
def session_stack(shared_dir: str | os.PathLike[str] | None = None,
                  progress: Progress = say) -> Iterator[StackInfo]:
    """A stack for one test session or benchmark run.

    Reuses the healthy stack of `shared_dir` (default: the one `make stack-up` starts) without ever stopping
    it; otherwise starts a private stack in `<shared dir>/session-<pid>/` and stops and removes it on exit,
    so concurrent sessions in one checkout never stop each other's stack.
    """
    shared = paths.stack_dir(shared_dir)
    state = read_state(shared)
    if state and not problems(state):
        info = StackInfo.from_state(state, shared, reused=True)
        progress(f"using the running stack in {shared}: Kafka {info.kafka_bootstrap}, Redis {info.redis_url}")
        yield info
        return
    _clean_dead_sessions(shared, progress)
    private = shared / f"{SESSION_PREFIX}{os.getpid()}"
    info = up(private, progress=progress)
    try:
        yield info
    finally:
        down(private, progress=progress)
        shutil.rmtree(private, ignore_errors=True)


def _clean_dead_sessions(shared: Path, progress: Progress) -> None:
    """Stop and remove private stacks whose owning process is gone (a test run killed with SIGKILL)."""
    if not shared.is_dir():
        return
    for d in shared.glob(f"{SESSION_PREFIX}*"):
        owner = d.name.removeprefix(SESSION_PREFIX)
        if owner.isdigit() and not alive(int(owner)):
            down(d, progress=progress)
            shutil.rmtree(d, ignore_errors=True)
