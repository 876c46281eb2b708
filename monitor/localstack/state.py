"""The recorded stack: `state.json` (pids with start times, ports, versions, Kafka's cluster id, the security mode of a
secured stack), the shell-sourceable `env`, what `StackInfo` tells callers, and the lock that lets one `up`/`down`
run at a time per state dir."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import redact_url
from . import kafka_server, paths
from .procs import LOOPBACK
from .security import Security

STATE_FILE = "state.json"
ENV_FILE = "env"
STATE_FORMAT = 1
COMPONENTS = ("redis", "kafka")  # start order (Redis is up in milliseconds)
SECURITY_DIR = "security"  # certificates and secrets of a secured stack
NAMES = {"kafka": "Kafka", "redis": "Redis"}


@dataclass(frozen=True)
class StackInfo:
    """Where the running stack listens, and what `down` needs to stop it.

    `started`: the servers this `up` call started or restarted ("redis", "kafka"; empty: all were reused);
    `created`: this call made a new stack (empty data, new ports, new Kafka cluster id).
    """

    kafka_bootstrap: str
    redis_url: str
    state_dir: Path
    kafka_pid: int
    redis_pid: int
    kafka_version: str
    redis_aof: bool = False
    cluster_id: str = ""
    started: tuple[str, ...] = field(default=(), compare=False)
    created: bool = field(default=False, compare=False)
    security: str = ""
    security_env: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def reused(self) -> bool:
        """True if everything was running already (this call started nothing)."""
        return not self.started

    @property
    def env(self) -> dict[str, str]:
        """What a client needs: SLAMON_KAFKA_BOOTSTRAP and SLAMON_REDIS_URL; on a secured stack the bootstrap servers
        and the variables of security.py (the Redis URL holds a password: SLAMON_REDIS_URL_FILE)."""
        if self.security:
            return {"SLAMON_KAFKA_BOOTSTRAP": self.kafka_bootstrap, **self.security_env}
        return {"SLAMON_KAFKA_BOOTSTRAP": self.kafka_bootstrap, "SLAMON_REDIS_URL": self.redis_url}

    @property
    def shown(self) -> str:
        """Where it listens, for messages (no password)."""
        return f"Kafka {self.kafka_bootstrap}{f' ({self.security})' if self.security else ''}, " \
               f"Redis {redact_url(self.redis_url)}"

    @classmethod
    def from_state(cls, state: dict[str, Any], state_dir: Path, started: tuple[str, ...] = (),
                   created: bool = False) -> StackInfo:
        return cls(
            kafka_bootstrap=f"{LOOPBACK}:{state['kafka']['port']}",
            redis_url=redis_url(state["redis"]),
            state_dir=state_dir,
            kafka_pid=state["kafka"]["pid"],
            redis_pid=state["redis"]["pid"],
            kafka_version=state["kafka"]["version"],
            redis_aof=bool(state["redis"].get("aof")),
            # (read from the log dir for a stack recorded before state.json had it)
            cluster_id=state["kafka"].get("cluster_id") or kafka_server.cluster_id(state_dir / "kafka" / "data") or "",
            started=started,
            created=created,
            security=state.get("security", ""),
            security_env=_security_env(state),
        )


def _security_env(state: dict[str, Any]) -> dict[str, str]:
    sec = security_of(state["kafka"])
    return {**sec.kafka_env(), **sec.redis_env(state["redis"]["port"])} if sec else {}


def security_of(rec: dict[str, Any]) -> Security | None:
    """The security of a recorded server (None: plaintext)."""
    return Security(rec["security"], Path(rec["security_dir"])) if rec.get("security") else None


def redis_url(rec: dict[str, Any]) -> str:
    sec = security_of(rec)
    return sec.redis_url(rec["port"]) if sec else f"redis://{LOOPBACK}:{rec['port']}/0"


def redis_cafile(rec: dict[str, Any]) -> str | None:
    sec = security_of(rec)
    return str(sec.path("ca.pem")) if sec else None


def kafka_client(rec: dict[str, Any]) -> dict[str, Any] | str:
    """How to reach the recorded broker: its bootstrap servers, with its security on a secured stack."""
    bootstrap = f"{LOOPBACK}:{rec['port']}"
    sec = security_of(rec)
    return sec.kafka_client_options(bootstrap) if sec else bootstrap


# ------------------------------------------------------------------------------------------- state files


@contextlib.contextmanager
def locked(sdir: Path) -> Iterator[None]:
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


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_state(sdir: Path, state: dict[str, Any]) -> None:
    write_atomic(sdir / STATE_FILE, json.dumps(state, indent=1) + "\n")


def write_env(info: StackInfo) -> None:
    write_atomic(info.state_dir / ENV_FILE, "".join(f"{k}={v}\n" for k, v in info.env.items()))


def remove_state(sdir: Path) -> None:
    for name in (STATE_FILE, ENV_FILE):
        with contextlib.suppress(FileNotFoundError):
            (sdir / name).unlink()


def remove_data(sdir: Path) -> bool:
    """Delete the servers' directories (data, config, logs); True if there was any."""
    found = False
    for key in (*COMPONENTS, SECURITY_DIR):
        if (sdir / key).exists():
            found = True
            shutil.rmtree(sdir / key, ignore_errors=True)
    return found


def restartable(sdir: Path, state: dict[str, Any]) -> bool:
    """True if `state` describes a stack that finished its first start: ports recorded, Kafka's log dir formatted."""
    k, r = state.get("kafka") or {}, state.get("redis") or {}
    return (all(isinstance(k.get(f), int) for f in ("port", "controller_port")) and isinstance(r.get("port"), int)
            and (sdir / "kafka" / "data" / "meta.properties").is_file())
