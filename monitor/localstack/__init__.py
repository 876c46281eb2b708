"""Local stack launcher: Apache Kafka (KRaft, from Maven Central jars) and Redis on free loopback ports.

Command line: `python -m monitor.localstack fetch|up [--fresh]|down [--keep-data]|status` or `slamon stack ...`.
From Python (tests, demo, benchmarks)::

    from monitor.localstack import up, down, session_stack
    info = up()                 # or reuse it, restarting what died: info.kafka_bootstrap, info.redis_url
    down()                      # stop it and delete its data (keep_data=True: `up` restarts it later)
    with session_stack() as info: ...

This module stays import-light (`slamon --help` imports the package); the launcher loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .procs import StackError
    from .stack import StackInfo, down, read_state, session_stack, status, up

__all__ = ["StackError", "StackInfo", "down", "fetch", "read_state", "session_stack", "status", "up"]


def __getattr__(name: str) -> Any:
    if name == "fetch":
        from .kafka_jars import fetch

        return fetch
    if name == "StackError":
        from .procs import StackError

        return StackError
    if name in __all__:
        from . import stack

        return getattr(stack, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
