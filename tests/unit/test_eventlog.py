"""Reading event files: a bad line is a `malformed` item and reading goes on; a file that cannot be read to its end
(damaged compression, a CSV that is not UTF-8 or not CSV, a CSV header without the required columns) raises
EventFileError naming the file and the line."""

from __future__ import annotations

import gzip

import orjson
import pytest

from monitor.core.events import Event, Malformed
from monitor.eventlog import EventFileError, read_events

HEADER = "event_id,order_id,process,type,node,at\n"


def _event(i: int) -> dict:
    return {"event_id": str(i), "order_id": f"o{i}", "process": "p", "type": "node_started", "node": "n",
            "at": "2026-01-01T00:00:00Z"}


def _row(i: int, order: str | None = None) -> str:
    return f"{i},{order or f'o{i}'},p,node_started,n,2026-01-01T00:00:00Z\n"


def test_a_truncated_gzip_stream_raises_after_the_events_it_could_read(tmp_path):
    whole = gzip.compress(b"\n".join(orjson.dumps(_event(i)) for i in range(5000)))
    path = tmp_path / "e.jsonl.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    got: list = []
    with pytest.raises(EventFileError, match=r"e\.jsonl\.gz: the compressed data is damaged or cut short after line"):
        got.extend(read_events(str(path)))
    assert got and all(type(i) is Event for i in got)
    path.write_bytes(b"\x1f\x8b" + b"x" * 40)  # gzip magic, then nonsense
    with pytest.raises(EventFileError, match="at its start"):
        list(read_events(str(path)))


def test_a_csv_line_that_is_not_utf8_raises_with_its_line_number(tmp_path):
    path = tmp_path / "e.csv"
    path.write_bytes((HEADER + _row(1) + _row(2) + _row(3, "caf\xe9")).encode("latin-1"))
    got: list = []
    with pytest.raises(EventFileError, match=r"e\.csv: line 4 is not UTF-8 text \(byte 0xe9\)"):
        got.extend(read_events(str(path)))
    assert [e.event_id for e in got] == ["1", "2"]
    # a JSON line that is not UTF-8 is one bad line among good ones: `malformed`, and reading goes on
    path = tmp_path / "e.jsonl"
    path.write_bytes(orjson.dumps(_event(1)) + b"\n{\"event_id\": \"caf\xe9\"}\n" + orjson.dumps(_event(2)) + b"\n")
    assert [type(i) for i in read_events(str(path))] == [Event, Malformed, Event]


def test_a_gzipped_csv_is_checked_the_same_way(tmp_path):
    path = tmp_path / "e.csv.gz"
    path.write_bytes(gzip.compress((HEADER + _row(1) + _row(2, "caf\xe9")).encode("latin-1")))
    with pytest.raises(EventFileError, match="line 3 is not UTF-8"):
        list(read_events(str(path)))


@pytest.mark.parametrize(
    ("header", "missing"),
    [("id,when,what", "columns event_id, order_id, process, type, at"), ("event_id,order_id,process,type,node",
                                                                          "column at")],
)
def test_a_csv_header_without_the_required_columns_raises_naming_them(tmp_path, header, missing):
    path = tmp_path / "e.csv"
    path.write_text(f"{header}\n1,2,3\n")
    with pytest.raises(EventFileError, match=f"e\\.csv: the CSV header lacks the {missing} \\(it has {header.replace(',', ', ')}"):
        list(read_events(str(path)))
    # `node` and `status` are needed by some event types only; an empty file has no header and no events
    path.write_text("event_id,order_id,process,type,at\n1,a,p,order_completed,2026-01-01T00:00:00Z\n")
    assert [e.type for e in read_events(str(path))] == ["order_completed"]
    path.write_text("")
    assert list(read_events(str(path))) == []


def test_a_csv_field_beyond_the_csv_module_limit_raises_with_its_line(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(HEADER + _row(1) + '2,"' + "x" * 200_000 + '",p,node_started,n,2026-01-01T00:00:00Z\n')
    with pytest.raises(EventFileError, match=r"line 3 is not readable CSV"):
        list(read_events(str(path)))
