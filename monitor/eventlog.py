"""Event log files: JSON Lines or CSV, optionally gzipped, read into events; and the replay of such a file."""

from __future__ import annotations

import csv
import gc
import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, Protocol

import orjson

from .core.events import Event, Malformed, decode_event, event_from_object
from .core.policies import PolicySet
from .core.replay import Item, ReplaySink, Unsorted, replay

# The CSV columns every event needs (CONTRACTS.md section 2); `node` and `status` are needed by some types only.
REQUIRED_COLUMNS = ("event_id", "order_id", "process", "type", "at")


class EventFileError(ValueError):
    """The file as a whole cannot be read as events: damaged compression, a CSV that is not UTF-8 or whose header
    lacks the required columns. Unlike a bad line (counted as `malformed`), nothing after it can be trusted."""


class Progress(Protocol):
    def update(self, done: int, total: int) -> None: ...

    def done(self) -> None: ...


def _open_binary(path: str) -> tuple[BinaryIO, BinaryIO, int]:
    """(stream to read, raw file for progress, total raw bytes); gzip is recognised by its magic bytes."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    size = os.fstat(raw.fileno()).st_size
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw), raw, size  # type: ignore[return-value]
    return raw, raw, size


def _is_csv(path: str, first_line: bytes) -> bool:
    name = path.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return True
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return False
    stripped = first_line.lstrip()
    return not stripped.startswith((b"{", b"[", b'"')) and b"event_id" in stripped and b"," in stripped


def read_events(path: str, progress: Progress | None = None,
                order_filter: Callable[[bytes | None], bool] | None = None) -> Iterator[Item]:
    """Events of a JSON Lines or CSV file, each an Event or a Malformed (with the reason).

    `order_filter`: only the lines whose `order_id` (UTF-8 bytes, None when there is none) it accepts; a JSON line's
    is read from the raw line (`order_key`), so the others are not even decoded.

    Raises EventFileError, naming the file and the line, when the file cannot be read to its end: a truncated or
    corrupt gzip stream, a CSV line that is not UTF-8 or not CSV, a CSV header without the required columns. The
    events before it have been yielded already; callers reject the whole file (a partial replay would be wrong
    in ways no count can show)."""
    n = -1  # index of the last line read
    try:
        stream, raw, size = _open_binary(path)
        with raw, stream:
            buffered = io.BufferedReader(stream) if not hasattr(stream, "peek") else stream
            if buffered.peek(3)[:3] == b"\xef\xbb\xbf":  # type: ignore[union-attr]
                buffered.read(3)  # a UTF-8 byte order mark (spreadsheet exports write one): not part of the data
            first = buffered.peek(4096).split(b"\n", 1)[0]  # type: ignore[union-attr]
            lines: Iterable[bytes] = buffered
            if _is_csv(path, first):
                events = _csv_events(path, buffered, progress, raw, size)
                yield from events if order_filter is None else of_orders(events, order_filter)
                return
            for n, line in enumerate(lines):
                if progress is not None and n % 50_000 == 0:
                    progress.update(raw.tell(), size)
                if order_filter is not None and not order_filter(order_key(line)):
                    continue
                if line.isspace():  # a blank line (bytes.isspace: the ASCII whitespace bytes.strip removes)
                    continue
                try:
                    yield decode_event(line)
                except Malformed as exc:
                    yield exc
    except _DAMAGED as exc:
        raise _damaged(path, n + 1, exc) from None


def of_orders(items: Iterable[Item], order_filter: Callable[[bytes | None], bool]) -> Iterator[Item]:
    """The items whose `order_id` (UTF-8 bytes; None for a Malformed) `order_filter` accepts."""
    for item in items:
        key = item.order_id.encode("utf-8", "surrogatepass") if type(item) is Event else None
        if order_filter(key):
            yield item


_KEY = b'"order_id"'
_KEY_COLON = b'"order_id":"'


def order_key(line: bytes) -> bytes | None:
    """The UTF-8 bytes of the `order_id` of a JSON line that is an event; for other lines (malformed, wherever
    they are decoded) some bytes or None. Read from the raw line when it has no escape (no backslash) and `"order_id"`
    occurs once, followed by `:"` or `: "` (the key cannot occur inside a JSON string, whose quotes would be
    escaped, nor be written otherwise: in an event, that one occurrence is the top-level key); otherwise from the
    decoded line."""
    if line.count(_KEY) == 1 and b"\\" not in line:
        for sep in (_KEY_COLON, b'"order_id": "'):
            rest = line.partition(sep)[2]
            if rest:
                value, quote, _ = rest.partition(b'"')
                if quote:
                    return value
                break
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    value = obj.get("order_id") if type(obj) is dict else None
    return value.encode("utf-8", "surrogatepass") if type(value) is str else None


_DAMAGED = (EOFError, zlib.error, gzip.BadGzipFile)  # what a truncated or corrupt gzip stream raises


def _damaged(path: str, lines_read: int, exc: Exception) -> EventFileError:
    where = f"after line {lines_read}" if lines_read else "at its start"
    return EventFileError(f"{path}: the compressed data is damaged or cut short {where} ({exc})")


def _csv_events(path: str, buffered: Iterable[bytes], progress: Progress | None, raw: BinaryIO,
                size: int) -> Iterator[Item]:
    line = 0

    def text_lines() -> Iterator[str]:  # UTF-8 line by line, so that a bad byte is placed on its line
        nonlocal line
        for line, data in enumerate(buffered, 1):
            try:
                yield data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EventFileError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                                     "save the file as UTF-8") from None

    reader = csv.DictReader(text_lines())
    try:
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or REQUIRED_COLUMNS)]
        if missing:
            raise EventFileError(f"{path}: the CSV header lacks the column{'s' if len(missing) > 1 else ''} "
                                 f"{', '.join(missing)} (it has {', '.join(reader.fieldnames or ())}; needed: "
                                 f"{', '.join(REQUIRED_COLUMNS)})")
        for n, row in enumerate(reader):
            if progress is not None and n % 50_000 == 0:
                progress.update(raw.tell(), size)
            if None in row:  # more cells than header names
                yield Malformed("more cells than the header has names")
                continue
            obj = {k: v for k, v in row.items() if v not in ("", None) and k != "attrs"}
            if not obj:
                continue
            try:
                yield event_from_object(obj)
            except Malformed as exc:
                yield exc
    except csv.Error as exc:
        raise EventFileError(f"{path}: line {line} is not readable CSV ({exc})") from None
    except _DAMAGED as exc:
        raise _damaged(path, line, exc) from None


def replay_file(policies: PolicySet, path: str, now: int | None = None, progress: Progress | None = None,
                sink_factory: Callable[[], ReplaySink] = ReplaySink) -> dict[str, Any]:
    """Replay an event log file (see `core.replay.replay`), in one pass when its events are in time order."""
    try:
        return replay_source(policies, lambda: read_events(path, progress), now, sink_factory)
    finally:
        if progress is not None:
            progress.done()


def replay_source(policies: PolicySet, items: Callable[[], Iterable[Item]], now: int | None = None,
                  sink_factory: Callable[[], ReplaySink] = ReplaySink) -> dict[str, Any]:
    """Replay the items of `items()` (a new iterator each call): in one pass when they are in time order,
    otherwise sorted in memory (stable), the malformed ones first."""
    # A replay builds millions of small objects and no reference cycles: the cyclic collector would rescan the
    # growing heap again and again for nothing (a fifth of the run time on a million events).
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            return replay(policies, items, now, require_sorted=True, sink_factory=sink_factory)
        except Unsorted:
            listed = list(items())
            events = sorted((i for i in listed if type(i) is Event), key=lambda e: e.at)  # stable
            malformed = [i for i in listed if type(i) is not Event]
            ordered = [*malformed, *events]
            return replay(policies, lambda: ordered, now, sink_factory=sink_factory)
    finally:
        if collecting:
            gc.enable()
