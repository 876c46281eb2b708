"""IEEE XES event logs (plain or gzip) -> workflow events as JSON Lines, ordered by time (CONTRACTS.md section 11).

The log is streamed through expat: each event is read from its attributes' elements as they come, each trace is
handed over when it ends, so memory holds one trace at a time plus the output being put in time order (monitor/importers/sorting.py
spills it to temporary files beyond a chunk). Two modes:

- `lifecycle`: each XES event with a lifecycle transition becomes one event (start, complete, suspend, resume,
  ate_abort / pi_abort); without a transition it is skipped, or with `instant_as_run` becomes a run of no time.
- `sojourn`: for logs of status changes (one complete event per change): each event ends the run of the previous
  activity and starts a run of its own; the last run ends, and the order completes, at the last event's time.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import Element
from xml.parsers.expat import ErrorString, ExpatError, ParserCreate

import orjson

from ..core.instants import InstantError, format_instant, from_datetime, parse_instant
from ..core.vocabulary import (
    NODE_CANCELLED,
    NODE_COMPLETED,
    NODE_PAUSED,
    NODE_RESUMED,
    NODE_STARTED,
    ORDER_COMPLETED,
)
from .sorting import TimeSorter

MODES = ("lifecycle", "sojourn")
NAME, TRANSITION, TIMESTAMP = "concept:name", "lifecycle:transition", "time:timestamp"
TRANSITIONS = {"start": NODE_STARTED, "complete": NODE_COMPLETED, "suspend": NODE_PAUSED, "resume": NODE_RESUMED,
               "ate_abort": NODE_CANCELLED, "pi_abort": NODE_CANCELLED}
_SCALARS = {"string", "date", "id", "int", "float", "boolean"}
_ATTRIBUTES = _SCALARS | {"list", "container"}


class XesError(ValueError):
    """The file cannot be read as an XES log: not well-formed XML, damaged compression, another root element."""


@dataclass(slots=True)
class XesEvent:
    index: int  # position in its trace, from 0
    name: str | None
    transition: str | None  # lower case
    at: int | None
    at_text: str | None
    attrs: dict[str, Any]
    problem: str | None = None  # why it cannot be imported (a skip reason)


@dataclass(slots=True)
class ImportSummary:
    traces: int = 0
    events: int = 0  # written
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {"traces": self.traces, "events_written": self.events, "skipped": dict(sorted(self.skipped.items()))}


_LOCAL: dict[str, str] = {}


def _local(tag: str) -> str:
    """The tag without an XML namespace (`{http://www.xes-standard.org/}trace` -> `trace`)."""
    name = _LOCAL.get(tag)
    if name is None:
        name = _LOCAL[tag] = tag.rpartition("}")[2]
    return name


def _value(el: Element, kind: str) -> Any:
    """The value of an XES attribute element of type `kind`: typed scalars, lists and containers (nested)."""
    if kind == "container":
        return {c.get("key", ""): _value(c, _local(c.tag)) for c in el if _local(c.tag) in _ATTRIBUTES}
    if kind == "list":
        values = next((c for c in el if _local(c.tag) == "values"), el)
        return [_value(c, _local(c.tag)) for c in values if _local(c.tag) in _ATTRIBUTES]
    return _scalar(kind, el.get("value"))


def _scalar(kind: str, raw: str | None) -> Any:
    """The value of a scalar XES attribute of type `kind` written `raw`."""
    if raw is None:
        return None
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            number = float(raw)
            return number if number - number == 0 else raw  # inf and nan are no JSON: keep the text
    except ValueError:
        return raw
    if kind == "boolean":
        return raw.strip().lower() == "true"
    return raw


def _instant(text: str) -> tuple[int, str]:
    """(microseconds, RFC 3339 text) of an xs:dateTime; one without an offset is read as UTC."""
    try:
        return parse_instant(text), text
    except InstantError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InstantError(f"not a date-time: {text!r}") from None
    us = from_datetime(dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC))
    return us, format_instant(us)


def _open(path: str) -> IO[bytes]:
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def _handlers(path: str, log_name: list[str | None], finished: list[tuple[str | None, list[XesEvent]]]) -> Any:
    """expat's start and end handlers that turn the elements of an XES log into (trace name, events), appended to
    `finished` as each trace ends. (Closures: the state is read once per element, several million times.)

    Depth 1 is the log, 2 its attributes and traces, 3 a trace's attributes and events, 4 an event's attributes
    (whose own children, for lists and containers, are collected as elements and read by `_value`)."""
    depth = 0
    in_trace = in_event = False
    traces_done = 0
    trace_name: str | None = None
    events: list[XesEvent] = []
    # the event being read
    name = transition = at_text = problem = None
    at: int | None = None
    attrs: dict[str, Any] = {}
    # a list or container attribute of the event, collected as elements until it ends
    nested: list[Element] = []
    nested_key = ""

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal depth, in_trace, in_event, trace_name, name, transition, at, at_text, problem, attrs, nested_key
        depth += 1
        if depth == 4:
            if not in_event:
                return
            key = attributes.get("key")
            if key == NAME:
                name = attributes.get("value")
            elif key == TRANSITION:
                transition = (attributes.get("value") or "").strip().lower() or None
            elif key == TIMESTAMP:
                try:
                    at, at_text = _instant(attributes.get("value") or "")
                except InstantError:
                    problem = "bad_timestamp"
            elif key is not None:
                kind = _local(tag)
                if kind in _SCALARS:
                    attrs[key] = _scalar(kind, attributes.get("value"))
                elif kind in _ATTRIBUTES:  # a list or container: its elements are kept until it ends
                    nested_key = key
                    nested.append(Element(tag, attributes))
        elif depth > 4:
            if nested:
                element = Element(tag, attributes)
                nested[-1].append(element)
                nested.append(element)
        elif depth == 3:
            if in_trace:
                kind = _local(tag)
                if kind == "event":
                    in_event = True
                    name = transition = at_text = at = problem = None
                    attrs = {}
                elif kind in _SCALARS and attributes.get("key") == NAME:  # the trace's name
                    trace_name = attributes.get("value")
        elif depth == 2:
            in_trace = _local(tag) == "trace"
            if not in_trace and not traces_done and attributes.get("key") == NAME and _local(tag) in _SCALARS:
                log_name[0] = attributes.get("value")  # the log's name (as of the first trace's end)
        elif _local(tag) != "log":  # depth 1
            raise XesError(f"{path}: not an XES log (the root element is <{_local(tag)}>, not <log>)")

    def end(tag: str) -> None:
        nonlocal depth, in_trace, in_event, traces_done, trace_name, events
        depth -= 1
        if depth >= 3:  # the element ended at depth 4 or more
            if nested:
                element = nested.pop()
                if not nested:  # the list or container at depth 4 has ended
                    attrs[nested_key] = _value(element, _local(element.tag))
        elif depth == 2:
            if in_event:
                in_event = False
                reason = problem
                if reason is None and at is None:
                    reason = "no_timestamp"
                if not name:
                    reason = "no_activity_name"
                events.append(XesEvent(len(events), name, transition, at, at_text, attrs, reason))
        elif depth == 1 and in_trace:
            finished.append((trace_name, events))
            traces_done += 1
            in_trace, trace_name, events = False, None, []

    return start, end


CHUNK = 1 << 16  # bytes of the file parsed at a time


def read_traces(path: str, log_name: list[str | None]) -> Iterator[tuple[str | None, list[XesEvent]]]:
    """(trace name, its events in file order) per trace, streamed (expat, a chunk of the file at a time).
    `log_name[0]` is set to the log's `concept:name` when the log has one (XES puts the log's attributes before
    its traces)."""
    finished: list[tuple[str | None, list[XesEvent]]] = []
    parser = ParserCreate(namespace_separator="}")  # names as `namespace}local` (see _local)
    parser.StartElementHandler, parser.EndElementHandler = _handlers(path, log_name, finished)
    try:
        with _open(path) as stream:
            while True:
                data = stream.read(CHUNK)
                parser.Parse(data, not data)
                if finished:
                    yield from finished
                    finished.clear()
                if not data:
                    break
    except ExpatError as exc:
        raise XesError(f"{path}: not well-formed XML at line {exc.lineno}, column {exc.offset + 1} "
                       f"({ErrorString(exc.code)})") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise XesError(f"{path}: the compressed data is damaged or cut short ({exc})") from None


class _Writer:
    """Builds the events of one trace and hands them to the sorter."""

    def __init__(self, process: str, sorter: TimeSorter, summary: ImportSummary):
        self.process = process
        self.sorter = sorter
        self.summary = summary

    def emit(self, event_id: str, order_id: str, etype: str, at: int, at_text: str, node: str | None = None,
             attrs: dict[str, Any] | None = None) -> None:
        obj: dict[str, Any] = {"event_id": event_id, "order_id": order_id, "process": self.process, "type": etype}
        if node is not None:
            obj["node"] = node
        obj["at"] = at_text
        if attrs:
            obj["attrs"] = attrs
        # a new bytes object of its own size: orjson's own keeps a 4 KiB allocation (measured), too much to hold
        self.sorter.add(at, orjson.dumps(obj) + b"\n")
        self.summary.events += 1

    def lifecycle(self, order: str, events: list[XesEvent], instant_as_run: bool) -> None:
        for ev in events:
            if ev.problem is not None:
                self.summary.skip(ev.problem)
                continue
            event_id = f"{order}:{ev.index}"
            if ev.transition is None:
                if not instant_as_run:
                    self.summary.skip("no_lifecycle")
                    continue
                self.emit(f"{event_id}:start", order, NODE_STARTED, ev.at, ev.at_text, ev.name, ev.attrs)  # type: ignore[arg-type]
                self.emit(f"{event_id}:complete", order, NODE_COMPLETED, ev.at, ev.at_text, ev.name, ev.attrs)  # type: ignore[arg-type]
            elif ev.transition in TRANSITIONS:
                self.emit(event_id, order, TRANSITIONS[ev.transition], ev.at, ev.at_text, ev.name, ev.attrs)  # type: ignore[arg-type]
            else:
                self.summary.skip(f"lifecycle_{ev.transition}")

    def sojourn(self, order: str, events: list[XesEvent]) -> None:
        kept = []
        for ev in events:
            if ev.problem is not None:
                self.summary.skip(ev.problem)
            elif ev.transition not in (None, "complete"):
                self.summary.skip(f"lifecycle_{ev.transition}")
            else:
                kept.append(ev)
        kept.sort(key=lambda ev: ev.at)  # type: ignore[arg-type,return-value] - stable: file order at ties
        for i, ev in enumerate(kept):
            if i:
                self.emit(f"{order}:{i}:end", order, NODE_COMPLETED, ev.at, ev.at_text, kept[i - 1].name)  # type: ignore[arg-type]
            self.emit(f"{order}:{i}:start", order, NODE_STARTED, ev.at, ev.at_text, ev.name, ev.attrs)  # type: ignore[arg-type]
        if kept:
            last = kept[-1]
            self.emit(f"{order}:{len(kept)}:end", order, NODE_COMPLETED, last.at, last.at_text, last.name)  # type: ignore[arg-type]
            self.emit(f"{order}:end", order, ORDER_COMPLETED, last.at, last.at_text)  # type: ignore[arg-type]


def default_process(path: str) -> str:
    """The file name without its extensions (`bpic17.xes.gz` -> `bpic17`)."""
    return Path(path).name.split(".", 1)[0] or "process"


def import_xes(path: str, out: IO[bytes], process: str | None = None, mode: str = "lifecycle",
               instant_as_run: bool = False, chunk: int | None = None) -> ImportSummary:
    """Write the workflow events of the XES log at `path` to `out` (JSON Lines, in time order). Raises XesError
    before anything is written when the file is not a readable XES log."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    summary = ImportSummary()
    sorter = TimeSorter(chunk) if chunk else TimeSorter()
    log_name: list[str | None] = [None]
    writer: _Writer | None = None
    try:
        for trace_name, events in read_traces(path, log_name):
            summary.traces += 1
            if writer is None:
                writer = _Writer(process or log_name[0] or default_process(path), sorter, summary)
            if not trace_name:
                summary.skip("trace_without_name", len(events))
            elif mode == "lifecycle":
                writer.lifecycle(trace_name, events, instant_as_run)
            else:
                writer.sojourn(trace_name, events)
        out.writelines(sorter.lines())
    finally:
        sorter.close()
    return summary
