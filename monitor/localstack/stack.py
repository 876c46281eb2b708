"""The local stack: one Kafka broker+controller and one Redis on free loopback ports, described by a state dir.

    <state dir>/state.json   pids (with start times), ports, versions, Kafka's cluster id: what `up` started or
                             restarts and `down` stops
    <state dir>/env          SLAMON_KAFKA_BOOTSTRAP=... and SLAMON_REDIS_URL=... (shell-sourceable); on a secured
                             stack every SLAMON_KAFKA_* and SLAMON_REDIS_* variable a client needs
    <state dir>/kafka/       server.properties, data/, kafka.log (the broker's working directory)
    <state dir>/redis/       redis.log, AOF files if enabled (Redis' working directory)
    <state dir>/security/    a secured stack's CA, certificates and secrets (security.py)

The state dir is `.stack/` at the repo root unless `$SLAMON_STACK_DIR` or an explicit `state_dir` says otherwise.
`$SLAMON_STACK_SECURITY` (sasl_ssl or mtls) or `up(security=...)` asks for a secured stack (security.py).

A recorded stack keeps its ports and data until `down` (or `up(fresh=True)`): `up` reuses what is healthy and
restarts what died on its recorded ports and data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import kafka_jars, kafka_server, paths, redis_server
from .kafka_server import KafkaServer
from .procs import (
    LOOPBACK,
    StackError,
    alive,
    free_ports,
    port_free,
    port_open,
    port_users,
    processes_in,
    say,
    start_time,
    stop,
    wait_until,
)
from .redis_server import RedisServer
from .security import MODES, Security
from .state import (
    COMPONENTS,
    ENV_FILE,
    NAMES,
    SECURITY_DIR,
    STATE_FORMAT,
    StackInfo,
    kafka_client,
    locked,
    read_state,
    redis_cafile,
    redis_url,
    remove_data,
    remove_state,
    restartable,
    security_of,
    write_env,
    write_state,
)

Progress = Callable[[str], None]

KAFKA_STOP_TIMEOUT = 30.0
REDIS_START_TIMEOUT = 15.0
REDIS_STOP_TIMEOUT = 10.0
SESSION_PREFIX = "session-"


# ---------------------------------------------------------------------------------------------- health


def _problem(key: str, rec: dict[str, Any], probe_timeout: float = 5.0) -> str | None:
    """Why the recorded server `key` is not usable (None: alive, the pinned version, answering)."""
    name = NAMES[key]
    if not alive(rec.get("pid"), rec.get("start_time")):
        return f"{name} (pid {rec.get('pid')}) is not running"
    if key == "kafka":
        if rec.get("version") != kafka_jars.kafka_version():
            return f"Kafka {rec.get('version')} runs but {kafka_jars.kafka_version()} is pinned"
        if not kafka_server.probe(kafka_client(rec), timeout=probe_timeout):
            return f"Kafka on {LOOPBACK}:{rec['port']} does not answer a metadata request"
    elif not redis_server.ping(redis_url(rec), timeout=probe_timeout, cafile=redis_cafile(rec)):
        return f"Redis on {LOOPBACK}:{rec['port']} does not answer PING"
    return None


def problems(state: dict[str, Any] | None, probe_timeout: float = 5.0) -> list[str]:
    """Why the stack described by `state` is not usable ([] = healthy: processes alive and answering)."""
    if not state or "kafka" not in state or "redis" not in state:
        return ["no stack recorded"]
    return [p for key in ("kafka", "redis") if (p := _problem(key, state[key], probe_timeout))]


def status(state_dir: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any] | None, list[str]]:
    """(recorded state or None, problems) of the stack in `state_dir`."""
    state = read_state(state_dir)
    return state, (problems(state) if state else ["no stack recorded"])


# ------------------------------------------------------------------------------------------------ up/down


def up(state_dir: str | os.PathLike[str] | None = None, *, redis_aof: bool | None = None,
       timeout: float | None = None, fresh: bool = False, progress: Progress = say,
       security: str | None = None) -> StackInfo:
    """Start the stack, reuse the healthy one recorded in `state_dir`, or bring back what of it died (idempotent).

    A recorded stack keeps its ports and data: a server that is not running (or not answering) is restarted on its
    recorded ports and directory (Kafka: same log dir and cluster id; Redis: same dir and AOF), a healthy one is
    left alone. A recorded port that another process holds now is a StackError: nothing is wiped. Only
    `fresh=True` (or `down`) throws the stack's data away and starts anew on new ports.

    `redis_aof`: True/False switches Redis' append-only file on/off (a running Redis keeps its data); None keeps
    what is recorded (off for a new stack). Writes `<state dir>/env`.

    `security`: "" (plaintext), "sasl_ssl" or "mtls" (see security.py); None: `$SLAMON_STACK_SECURITY`. A recorded
    stack of another kind is a StackError (`down` or `fresh=True` first).
    """
    sdir = paths.stack_dir(state_dir)
    timeout = timeout or paths.kafka_start_timeout()
    security = paths.stack_security() if security is None else security
    if security and security not in MODES:
        raise StackError(f"SLAMON_STACK_SECURITY={security!r}: use one of {', '.join(MODES)} (or leave it empty)")
    with locked(sdir):
        state = read_state(sdir)
        if fresh and (state or any((sdir / key).exists() for key in COMPONENTS)):
            progress(f"--fresh: discarding the stack in {sdir} and its data")
        elif state and restartable(sdir, state):
            if state.get("security", "") != security:
                raise StackError(f"the stack in {sdir} runs with security {state.get('security') or 'none'}, but "
                                 f"{security or 'none'} is asked for (SLAMON_STACK_SECURITY): stop it first "
                                 f"(`make stack-down`) or start anew (`up --fresh`)")
            return _resume(sdir, state, redis_aof, timeout, progress)
        elif state:
            progress(f"the stack recorded in {sdir} never finished starting: starting a new one")
        _stop_everything(sdir, state, progress)
        rt = kafka_server.runtime(progress)
        for attempt in range(3):
            try:
                return _start(sdir, rt, bool(redis_aof), timeout, progress, security)
            except StackError as e:
                if "Address already in use" not in str(e) or attempt == 2:
                    raise
                progress("a chosen port was taken meanwhile; retrying on other ports")
        raise AssertionError("unreachable")


def _server(sdir: Path, key: str, rec: dict[str, Any], rt: kafka_server.Runtime | None) -> RedisServer | KafkaServer:
    if key == "redis":
        return RedisServer(sdir / "redis", rec["port"], aof=bool(rec.get("aof")), security=security_of(rec))
    assert rt is not None
    return KafkaServer(sdir / "kafka", rec["port"], rec["controller_port"], rt, security=security_of(rec))


def _launch(server: RedisServer | KafkaServer, rec: dict[str, Any]) -> int:
    """Start `server` (Kafka: config written, log dir formatted unless it is already) and record its pid."""
    if isinstance(server, KafkaServer):
        server.prepare()
        rec["version"] = server.runtime.version
    proc = server.start()
    rec.update(pid=proc.pid, start_time=start_time(proc.pid))
    return proc.pid


def _wait_ready(server: RedisServer | KafkaServer, pid: int, timeout: float) -> None:
    server.wait_ready(pid, REDIS_START_TIMEOUT if isinstance(server, RedisServer) else timeout)


def _start(sdir: Path, rt: kafka_server.Runtime, redis_aof: bool, timeout: float, progress: Progress,
           security: str = "") -> StackInfo:
    t0 = time.monotonic()
    remove_data(sdir)
    remove_state(sdir)
    kafka_port, controller_port, redis_port = free_ports(3)
    state: dict[str, Any] = {"format": STATE_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    recs = {"redis": {"port": redis_port, "aof": redis_aof, "dir": str(sdir / "redis")},
            "kafka": {"port": kafka_port, "controller_port": controller_port, "dir": str(sdir / "kafka"),
                      "log": str(sdir / "kafka" / "kafka.log")}}
    if security:
        material = Security(security, sdir / SECURITY_DIR)
        progress(f"making a CA, certificates and secrets for a {security} stack in {material.directory}")
        material.create()
        state["security"] = security
        for rec in recs.values():
            rec.update(security=security, security_dir=str(material.directory))
    servers = {key: _server(sdir, key, rec, rt) for key, rec in recs.items()}
    pids = {}
    try:
        progress(f"starting Redis on {LOOPBACK}:{redis_port} and Kafka {rt.version} on {servers['kafka'].bootstrap}...")
        for key in COMPONENTS:
            pids[key] = _launch(servers[key], recs[key])
            state[key] = recs[key]
            write_state(sdir, state)  # recorded at once, so that `down` finds it even if we die here
        for key in COMPONENTS:
            _wait_ready(servers[key], pids[key], timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            _stop_everything(sdir, state, progress=lambda _m: None)
            remove_state(sdir)
        raise
    state["kafka"]["cluster_id"] = kafka_server.cluster_id(sdir / "kafka" / "data")
    write_state(sdir, state)
    info = StackInfo.from_state(state, sdir, started=COMPONENTS, created=True)
    write_env(info)
    progress(f"stack up in {time.monotonic() - t0:.1f}s: {info.shown} (env in {sdir / ENV_FILE})")
    return info


def _resume(sdir: Path, state: dict[str, Any], redis_aof: bool | None, timeout: float,
            progress: Progress) -> StackInfo:
    """Reuse the recorded stack: restart (on the recorded ports and data) each server that is not healthy."""
    t0 = time.monotonic()
    found = {key: _problem(key, state[key]) for key in COMPONENTS}
    broken = tuple(key for key in COMPONENTS if found[key])
    before = json.dumps(state, sort_keys=True)
    if broken:
        progress("{}: restarting {} on the recorded ports and data".format(
            "; ".join(str(found[key]) for key in broken), " and ".join(NAMES[key] for key in broken)))
        _restart(sdir, state, broken, timeout, progress)
    if redis_aof is not None and bool(state["redis"].get("aof")) != redis_aof:
        _switch_aof(state["redis"], redis_aof, progress)
    if json.dumps(state, sort_keys=True) != before:
        write_state(sdir, state)
    info = StackInfo.from_state(state, sdir, started=broken)
    write_env(info)
    if broken:
        progress(f"stack up again in {time.monotonic() - t0:.1f}s: {info.shown} (env in {sdir / ENV_FILE})")
    else:
        progress(f"reusing the running stack: {info.shown}")
    return info


def _ports(rec: dict[str, Any]) -> list[int]:
    return [p for p in (rec.get("port"), rec.get("controller_port")) if p]


def _port_taken(sdir: Path, key: str, port: int) -> StackError:
    users = port_users(port)
    return StackError(
        f"{NAMES[key]}'s recorded port {LOOPBACK}:{port} is taken by another process "
        f"({'; '.join(users) if users else 'not visible in /proc'}), so {NAMES[key]} cannot be restarted with its "
        f"data in {sdir}. Free the port and run `up` again, or give the data up and start a new stack on new "
        f"ports: `make stack-down` then `make stack-up` (or `up --fresh`)")


def _restart(sdir: Path, state: dict[str, Any], keys: tuple[str, ...], timeout: float, progress: Progress) -> None:
    """Stop what is left of the servers `keys` (hung, outdated, leftovers in their dirs), then start them again on
    their recorded ports and directories. On failure what this started is stopped; the data is kept."""
    for key in keys:
        _stop_component(sdir, key, state[key], progress)
    for key in keys:
        for port in _ports(state[key]):
            if not wait_until(lambda p=port: port_free(p), 5.0):  # a killed server's socket closes a moment later
                raise _port_taken(sdir, key, port)
    rt = kafka_server.runtime(progress) if "kafka" in keys else None
    servers = {key: _server(sdir, key, state[key], rt) for key in keys}
    pids: dict[str, int] = {}
    try:
        for key in keys:
            pids[key] = _launch(servers[key], state[key])
            write_state(sdir, state)
        for key in keys:
            _wait_ready(servers[key], pids[key], timeout)
    except BaseException as e:
        for key in pids:
            with contextlib.suppress(Exception):
                _stop_component(sdir, key, state[key], lambda _m: None)
        if not isinstance(e, StackError):
            raise
        for key in pids:  # another process bound a port between the check and the start
            for port in _ports(state[key]):
                if "Address already in use" in str(e) and not port_free(port):
                    raise _port_taken(sdir, key, port) from e
        raise StackError(f"{e}\n(the stack's data in {sdir} is kept: fix the cause and run `up` again, or "
                         f"`make stack-down` / `up --fresh` to start a new stack without it)") from e


def _switch_aof(rec: dict[str, Any], aof: bool, progress: Progress) -> None:
    """Turn the append-only file of the running Redis on or off (CONFIG SET: the data in memory is kept)."""
    import redis

    client = redis_server.sync_client(redis_url(rec), 10, redis_cafile(rec))
    try:
        client.config_set("appendonly", "yes" if aof else "no")
    except redis.RedisError as e:
        raise StackError(f"could not switch Redis' AOF {'on' if aof else 'off'}: {e}") from e
    finally:
        client.close()
    rec["aof"] = aof
    progress(f"Redis AOF switched {'on' if aof else 'off'} (its data is kept)")


def down(state_dir: str | os.PathLike[str] | None = None, *, keep_data: bool = False,
         progress: Progress = say) -> bool:
    """Stop what the stack in `state_dir` started; True if something was running. Nothing running is fine.

    Also forgets the stack and deletes its data (kafka/, redis/), unless `keep_data`: then the state stays and the
    next `up` restarts the servers on their recorded ports and data.
    """
    sdir = paths.stack_dir(state_dir)
    if not sdir.exists():  # e.g. removed by `make clean` while the servers ran: look for them anyway
        stopped = _stop_everything(sdir, None, progress)
    else:
        with locked(sdir):
            stopped = _stop_everything(sdir, read_state(sdir), progress)
            if not keep_data:
                remove_state(sdir)
                if remove_data(sdir):
                    progress(f"removed the stack's data in {sdir}")
    if not stopped:
        progress(f"nothing running in {sdir}")
    return stopped


def _stop_component(sdir: Path, key: str, rec: dict[str, Any], progress: Progress) -> bool:
    """Stop the recorded server `key`, then any of its kind still running in its directory (a lost or
    half-written state.json)."""
    name = NAMES[key]
    exes, timeout = (("java",), KAFKA_STOP_TIMEOUT) if key == "kafka" else (redis_server.EXE_NAMES, REDIS_STOP_TIMEOUT)
    stopped = False
    if rec.get("pid") and alive(rec["pid"], rec.get("start_time")):
        progress(f"stopping {name} (pid {rec['pid']})...")
        stopped |= stop(rec["pid"], rec.get("start_time"), name=name, timeout=timeout, progress=progress)
    for pid in processes_in(sdir / key, exes):
        progress(f"stopping a leftover {name} (pid {pid}) running in {sdir / key}...")
        stopped |= stop(pid, start_time(pid), name=name, timeout=timeout, progress=progress)
    return stopped


def _stop_everything(sdir: Path, state: dict[str, Any] | None, progress: Progress) -> bool:
    """Stop the recorded servers and any leftovers in this dir's kafka/ or redis/; check their ports are closed."""
    stopped = False
    ports = []
    for key in ("kafka", "redis"):
        rec = (state or {}).get(key) or {}
        ports += _ports(rec)
        stopped |= _stop_component(sdir, key, rec, progress)
    for port in ports:
        if not wait_until(lambda p=port: not port_open(p), 5.0):
            progress(f"warning: {LOOPBACK}:{port} still accepts connections after stopping the stack")
    return stopped


# ------------------------------------------------------------------------------------- test sessions


@contextlib.contextmanager
def session_stack(shared_dir: str | os.PathLike[str] | None = None,
                  progress: Progress = say, security: str = "") -> Iterator[StackInfo]:
    """A stack for one test session or benchmark run.

    Reuses the healthy plaintext stack of `shared_dir` (default: the one `make stack-up` starts) without ever
    stopping it; otherwise starts a private one in `<shared dir>/session-<pid>/` and stops and removes it on exit,
    so concurrent sessions in one checkout never stop each other's stack. A secured stack (`security`: sasl_ssl or
    mtls) is always private (`session-<pid>-<security>/`).
    """
    shared = paths.stack_dir(shared_dir)
    state = None if security else read_state(shared)
    if state and not state.get("security") and not problems(state):
        info = StackInfo.from_state(state, shared)
        progress(f"using the running stack in {shared}: {info.shown}")
        yield info
        return
    _clean_dead_sessions(shared, progress)
    private = shared / f"{SESSION_PREFIX}{os.getpid()}{f'-{security}' if security else ''}"
    info = up(private, progress=progress, security=security)
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
        owner = d.name.removeprefix(SESSION_PREFIX).split("-")[0]
        if owner.isdigit() and not alive(int(owner)):
            down(d, progress=progress)
            shutil.rmtree(d, ignore_errors=True)
