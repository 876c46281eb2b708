"""What the commands share: settings with logging set up, policies loaded or reported, a progress bar, and
running a long-lived loop until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from .. import logs
from ..core.policies import PolicyError, PolicySet, load_policy_dir
from ..settings import Settings, SettingsError, settings_help


def settings_or_none(prog: str, *, log: bool = True) -> Settings | None:
    """Settings from the environment (JSON logging set up when `log`); on a bad setting the problem is printed
    to stderr and None returned (the command exits 2)."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
    if log:
        logs.setup(settings.log_level)
    return settings


def connections_refused(settings: Settings, *, redis: bool = False) -> str | None:
    """Why Kafka (and, with `redis`, Redis) refuse this command's clients as configured -- credentials,
    certificates, protocol -- checked before any work, so that the command ends at once with this one line; None
    when they let it in, or cannot be reached now (the command then waits or gives up as it does for an outage)."""
    from ..kafka import KafkaRefused
    from ..oncall.service import check_connections
    from ..redis_client import RedisRefused

    try:
        asyncio.run(check_connections(settings, logging.getLogger("slamon"), redis=redis))
    except (KafkaRefused, RedisRefused) as exc:
        return str(exc)
    return None


# command-line flag -> Settings field, for commands that let flags override the environment
_FLAG_SETTINGS = {"bootstrap": "kafka_bootstrap", "partitions": "partitions", "replication": "replication",
                  "prefix": "topic_prefix"}


def settings_with_flags(args: argparse.Namespace) -> Settings:
    """The environment's settings, overridden by the flags given (--bootstrap, --partitions, --replication,
    --prefix; a flag left at None keeps the environment's value). Raises SettingsError."""
    given = {field: getattr(args, flag) for flag, field in _FLAG_SETTINGS.items()
             if getattr(args, flag, None) is not None}
    return replace(Settings.from_env(), **given)


def add_service_parser(sub: Any, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A sub-command configured by SLAMON_* variables, which its --help lists."""
    return sub.add_parser(name, help=help, description=description, epilog=settings_help(),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def load_or_report(directory: str, prog: str, rejected: str = "policies rejected") -> PolicySet | None:
    """Load a policy directory; on problems print them (file: field: problem) to stderr and return None.
    Warnings (ignored unknown fields) are printed too, whether the load succeeds or not."""
    try:
        policies, warnings = load_policy_dir(directory)
    except PolicyError as exc:
        print(f"{prog}: {rejected}:\n{exc}", file=sys.stderr)
        policies, warnings = None, exc.warnings
    for w in warnings:
        print(f"{prog}: warning: {w}", file=sys.stderr)
    return policies


def serve(main: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run `main(stop_event)` until SIGTERM / Ctrl-C sets the event, then let it finish its batch."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
    return 0


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str):
        self.label = label
        self.last = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 or not total:
            return
        self.last = now
        share = min(done / total, 1.0)
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {share:6.1%}")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\r" + " " * 60 + "\r")
        sys.stderr.flush()
