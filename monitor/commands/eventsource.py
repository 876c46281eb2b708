"""What the analysis commands (report, backtest, recommend) share: `--policies`, where the events come from
(`--events FILE`, or `--from-kafka` where offered), `--now`, writing the output, and an unreadable source or
policy directory reported in one line (exit 2) instead of a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..core.instants import InstantError, parse_instant
from ..core.policies import PolicySet
from ..eventlog import EventFileError, read_events
from ..reports.analyses import Items
from .common import Progress, load_or_report, settings_or_none
from .framing import Failed, add_command, fail

T = TypeVar("T")


def add_analysis(sub: Any, name: str, help: str, description: str, example: str,
                 run: Callable[[argparse.Namespace], None], *, policies: str, kafka: bool,
                 metavar: str = "DIR") -> argparse.ArgumentParser:
    """An analysis command: `--policies`, the source of the events, `--now`; the caller adds its own flags."""
    p = add_command(sub, name, help, description, example, run)
    p.add_argument("--policies", required=True, metavar=metavar, help=policies)
    add_source_flags(p, kafka)
    return p


def policies_of(directory: str, prog: str, rejected: str = "policies rejected") -> PolicySet:
    policies = load_or_report(directory, prog, rejected)
    if policies is None:  # the problems are printed
        raise Failed(rejected)
    return policies


def add_source_flags(p: argparse.ArgumentParser, kafka: bool) -> None:
    if kafka:
        source = p.add_mutually_exclusive_group(required=True)
        source.add_argument("--events", metavar="FILE", help="events: JSON Lines or CSV (may be gzipped)")
        source.add_argument("--from-kafka", action="store_true",
                            help="read workflow.events from Kafka instead: every partition from the earliest retained "
                            "offset up to now, merged by event time ($SLAMON_KAFKA_BOOTSTRAP, $SLAMON_TOPIC_PREFIX)")
    else:
        p.add_argument("--events", required=True, metavar="FILE", help="events: JSON Lines or CSV (may be gzipped)")
    p.add_argument("--now", metavar="RFC3339", help="instant to judge open runs at (default: the latest event); "
                   "later events are not applied")


def now_of(args: argparse.Namespace, prog: str) -> int | None:
    if args.now is None:
        return None
    try:
        return parse_instant(args.now)
    except InstantError as exc:
        raise fail(prog, f"--now: {exc}") from None


def progress_bar(label: str) -> Progress | None:
    return Progress(label) if sys.stderr.isatty() else None


def event_items(args: argparse.Namespace, prog: str) -> Items:
    """The events of `--events FILE` (read anew on each call) or of `--from-kafka` (read once, held)."""
    if getattr(args, "from_kafka", False):
        from ..eventlog_kafka import KafkaReadError, read_kafka_events

        settings = settings_or_none(prog, log=False)
        if settings is None:
            raise Failed("settings")
        # the client's own log lines would repeat, unformatted, the one-line error printed below
        logging.getLogger("aiokafka").addHandler(logging.NullHandler())
        try:
            items = read_kafka_events(settings, progress_bar("reading workflow.events"))
        except KafkaReadError as exc:
            raise fail(prog, f"--from-kafka: {exc}") from None
        return lambda: items
    path = args.events
    if not Path(path).is_file():
        raise fail(prog, f"--events: no such file: {path}")
    progress = progress_bar(prog.removeprefix("slamon "))

    def items() -> Any:
        yield from read_events(path, progress)
        if progress is not None:
            progress.done()

    return items


def guarded(prog: str, events: str | None, compute: Callable[[], T]) -> T:
    """`compute()`, with a file that cannot be read to its end reported as one line (exit 2)."""
    try:
        return compute()
    except OSError as exc:
        raise fail(prog, f"cannot read {events}: {exc}") from None
    except EventFileError as exc:  # a damaged file: the whole analysis is rejected, not a partial one printed
        raise fail(prog, f"--events: {exc}") from None


def write_output(text: str | bytes, out: str | None, prog: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        Path(out).write_bytes(data)
    except OSError as exc:
        raise fail(prog, f"--out: cannot write {out}: {exc.strerror or exc}") from None
