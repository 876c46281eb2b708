"""Processes and ports: free loopback ports, starting detached servers, identifying and stopping them by pid.

Servers run in their own session (process group) so they outlive the `up` command and a Ctrl-C in the shell
that started them. A pid is only signalled while it still names the process we started: its start time
(field 22 of /proc/PID/stat) is recorded next to the pid, so a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Popen objects of servers started by this Python process, so that they are reaped (no zombie that still
# "exists" for kill(pid, 0)) and Popen does not warn about a child still running at exit.
_children: dict[int, subprocess.Popen] = {}


def say(message: str) -> None:
    """Default progress reporter: one line on stderr (stdout stays free for data, e.g. `status --json`)."""
    print(f"stack: {message}", file=sys.stderr, flush=True)


class StackError(RuntimeError):
    """The stack could not be fetched, started, checked or stopped; the message says why and what to look at."""


# ---------------------------------------------------------------------------------------------------- ports


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel's choice; the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports (sockets held open together so the kernel cannot hand out one twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((LOOPBACK, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(port: int) -> bool:
    """True if a server could listen on 127.0.0.1:port now. With SO_REUSEADDR, as Kafka and Redis bind: the
    TIME_WAIT connections a killed server leaves behind do not count, another process' socket does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
            s.listen(1)
        except OSError:
            return False
    return True


def port_users(port: int) -> list[str]:
    """The processes with a TCP socket on local port `port`, as "pid N: command line" (what /proc shows)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] != "0":
                    inodes.add(f"socket:[{fields[9]}]")  # inode 0: a TIME_WAIT socket, owned by nobody
    users = []
    for entry in Path("/proc").iterdir() if inodes else ():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and any(_readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                cmd = " ".join((entry / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split())
                users.append(f"pid {entry.name}: {cmd[:120]}")
    return users


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:  # closed meanwhile
        return ""


# ------------------------------------------------------------------------------------------------ processes


def start_time(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (None if there is no such process or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may contain spaces: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def _reap(pid: int) -> None:
    """Collect the exit status of `pid` if it is our child (so it does not linger as a zombie)."""
    child = _children.get(pid)
    if child is not None:
        child.poll()
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(pid: int | None, started: int | None = None) -> bool:
    """True if `pid` runs (not a zombie) and, when `started` is given, is still the process started then."""
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: never ours
    state = _state(pid)
    if state == "Z":
        _reap(pid)
        return False
    if started is not None and state is not None and start_time(pid) != started:
        return False
    return True


def spawn(cmd: Sequence[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server detached from our terminal and session, stdout+stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, close_fds=True,
        )
    _children[proc.pid] = proc
    return proc


def _signal(pid: int, sig: int) -> None:
    """Signal the process group led by `pid` (our servers are session leaders), else the pid alone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
            return
    except (ProcessLookupError, PermissionError):
        pass
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop(pid: int | None, started: int | None, *, name: str, timeout: float,
         progress: Callable[[str], None] | None = None) -> bool:
    """SIGTERM, wait up to `timeout` s, then SIGKILL. Returns False if there was nothing (of ours) to stop."""
    if not alive(pid, started):
        _children.pop(pid or -1, None)
        return False
    assert pid is not None
    _signal(pid, signal.SIGTERM)
    if not wait_until(lambda: not alive(pid), timeout):
        if progress:
            progress(f"{name} (pid {pid}) did not stop within {timeout:.0f}s after SIGTERM: sending SIGKILL")
        _signal(pid, signal.SIGKILL)
        if not wait_until(lambda: not alive(pid), 10):
            raise StackError(f"{name} (pid {pid}) survived SIGKILL")
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(5)
    return True


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def processes_in(directory: Path, exe_names: Sequence[str]) -> list[int]:
    """Pids of executables named `exe_names` whose working directory is exactly `directory`: our servers,
    found even if state.json was lost (each server runs in its own component directory)."""
    directory = directory.resolve()
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd").removesuffix(" (deleted)")
            exe = os.readlink(entry / "exe").removesuffix(" (deleted)")
        except OSError:
            continue
        if cwd == str(directory) and os.path.basename(exe) in exe_names and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def tail(path: Path, lines: int = 40) -> str:
    """Last `lines` lines of a log file ('' if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
