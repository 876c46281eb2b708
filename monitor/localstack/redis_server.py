"""Redis from Debian's `redis-server` on a loopback port, in the foreground of its own session.

No persistence by default (`--save '' --appendonly no`); `aof=True` turns on the append-only file
(fsync every second) in `directory`, so a recovery test can kill Redis and start it again on the same
directory and port. With `security` (a secured stack) it listens only with TLS and asks for a password; with
`password` alone it asks for that password on its plain port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .procs import LOOPBACK, StackError, alive, spawn, tail
from .security import Security

EXE_NAMES = ("redis-server", "redis-check-rdb")  # Debian's redis-server is a symlink to redis-check-rdb


def redis_server_exe() -> str:
    exe = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if not exe:
        raise StackError("`redis-server` not found: run `make debs` (apt-get install redis-server)")
    return exe


@dataclass
class RedisServer:
    directory: Path
    port: int
    aof: bool = False
    security: Security | None = None
    password: str = ""

    @property
    def url(self) -> str:
        if self.security:
            return self.security.redis_url(self.port)
        return f"redis://{f':{self.password}@' if self.password else ''}{LOOPBACK}:{self.port}/0"

    @property
    def cafile(self) -> str | None:
        return str(self.security.path("ca.pem")) if self.security else None

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def command(self) -> list[str]:
        cmd = [redis_server_exe()]
        if self.security or self.password:  # the password in a file only its owner reads, not on the command line
            conf = self.directory / "redis.conf"
            fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.security.redis_config(self.port) if self.security
                        else f"port {self.port}\nrequirepass {self.password}\n")
            cmd += [str(conf)]
        else:
            cmd += ["--port", str(self.port)]
        cmd += ["--bind", LOOPBACK, "--daemonize", "no", "--dir", str(self.directory), "--save", ""]
        if self.aof:
            cmd += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            cmd += ["--appendonly", "no"]
        return cmd

    def start(self) -> subprocess.Popen:
        self.directory.mkdir(parents=True, exist_ok=True)
        return spawn(self.command(), cwd=self.directory, log=self.log_path)

    def wait_ready(self, pid: int, timeout: float) -> None:
        """Block until PING answers; StackError with the log's tail otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            if not alive(pid):
                raise StackError(f"redis-server exited during start-up; last lines of {self.log_path}:\n"
                                 f"{tail(self.log_path)}")
            if ping(self.url, cafile=self.cafile):
                return
            if time.monotonic() >= deadline:
                raise StackError(f"Redis did not answer PING on {self.url} within {timeout:.0f}s; "
                                 f"last lines of {self.log_path}:\n{tail(self.log_path)}")
            time.sleep(0.05)


def sync_client(url: str, timeout: float, cafile: str | None = None) -> Any:
    """A blocking client of the stack's Redis (`cafile`: the stack's CA, for a rediss:// URL)."""
    import redis

    tls = {"ssl_ca_certs": cafile} if url.startswith("rediss://") else {}
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout, **tls)


def ping(url: str, timeout: float = 1.0, cafile: str | None = None) -> bool:
    """True if the Redis at `url` answers PING (loading a big AOF answers an error: not ready)."""
    import redis

    client = sync_client(url, timeout, cafile)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
