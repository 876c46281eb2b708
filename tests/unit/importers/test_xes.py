"""`slamon import xes` (CONTRACTS.md section 11): small XES logs written here, with the events they must give
written out by hand; gzip; malformed XML; and the real BPIC 2017 sample exported as XES and imported back."""

from __future__ import annotations

import gzip
import io
from collections import Counter
from pathlib import Path
from xml.sax.saxutils import quoteattr

import orjson
import pytest

from monitor.cli import main as slamon
from monitor.core.instants import parse_instant
from monitor.core.policies import load_policy_dir
from monitor.eventlog import replay_file
from monitor.importers.xes import XesError, import_xes

DATASET = Path("/work/shared/datasets/bpic2017-workitems")

def xes_event(name: str, transition: str | None = None, ts: str | None = None, extra: str = "") -> str:
    """One XES event element: its activity, lifecycle transition and timestamp when given, other attributes."""
    parts = [f'<string key="concept:name" value="{name}"/>']
    if transition is not None:
        parts.append(f'<string key="lifecycle:transition" value="{transition}"/>')
    if ts is not None:
        parts.append(f'<date key="time:timestamp" value="{ts}"/>')
    return f"<event>{''.join(parts)}{extra}</event>"


def trace(name: str | None, *events: str) -> str:
    head = f'<string key="concept:name" value="{name}"/>' if name is not None else ""
    return f"<trace>{head}\n    " + "\n    ".join(events) + "\n  </trace>"


ATTRIBUTES = """<string key="org:resource" value="Ann"/><int key="amount" value="1200"/><float key="score" value="0.5"/>
      <boolean key="urgent" value="true"/><id key="ref" value="r-1"/>
      <date key="due" value="2026-03-09T00:00:00Z"/>
      <list key="tags"><values><string key="tag" value="a"/><string key="tag" value="b"/></values></list>
      <container key="customer"><string key="name" value="Bo"/><int key="age" value="41"/></container>"""
TRACES = "\n  ".join([
    trace("c1",
          xes_event("check", "start", "2026-03-02T09:00:00.000+01:00", ATTRIBUTES),
          xes_event("check", "suspend", "2026-03-02T08:30:00Z"),
          xes_event("check", "resume", "2026-03-02T09:00:00Z"),
          xes_event("check", "COMPLETE", "2026-03-02T10:00:00Z"),
          xes_event("pay", "schedule", "2026-03-02T10:00:00Z"),
          xes_event("note", None, "2026-03-02T10:05:00"),  # no lifecycle; no offset (read as UTC)
          xes_event("pay", "start")),  # no timestamp
    trace("c2",
          xes_event("pay", "start", "2026-03-02T08:00:00Z"),
          xes_event("pay", "ate_abort", "2026-03-02T09:00:00Z"),
          xes_event("pay", "start", "2026-03-02T09:00:00Z"),
          xes_event("pay", "pi_abort", "2026-03-02T09:30:00Z")),
    trace(None, xes_event("x", "start", "2026-03-02T09:30:00Z")),  # a trace without a name
])
LOG = f"""<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <global scope="trace"><string key="concept:name" value="__INVALID__"/></global>
  <global scope="event"><string key="concept:name" value="__INVALID__"/>
    <string key="lifecycle:transition" value="complete"/></global>
  <classifier name="Activity" keys="concept:name"/>
  <string key="concept:name" value="claims"/>
  {TRACES}
</log>
"""


def e(event_id, order, etype, node, at, attrs=None, process="claims"):
    out = {"event_id": event_id, "order_id": order, "process": process, "type": etype}
    if node is not None:
        out["node"] = node
    out["at"] = at
    if attrs:
        out["attrs"] = attrs
    return out


EXPECTED = [  # in time order; ties in the order of the log (09:00+01:00 is 08:00Z, and c1 comes first)
    e("c1:0", "c1", "node_started", "check", "2026-03-02T09:00:00.000+01:00",
      {"org:resource": "Ann", "amount": 1200, "score": 0.5, "urgent": True, "ref": "r-1",
       "due": "2026-03-09T00:00:00Z", "tags": ["a", "b"], "customer": {"name": "Bo", "age": 41}}),
    e("c2:0", "c2", "node_started", "pay", "2026-03-02T08:00:00Z"),
    e("c1:1", "c1", "node_paused", "check", "2026-03-02T08:30:00Z"),
    e("c1:2", "c1", "node_resumed", "check", "2026-03-02T09:00:00Z"),
    e("c2:1", "c2", "node_cancelled", "pay", "2026-03-02T09:00:00Z"),
    e("c2:2", "c2", "node_started", "pay", "2026-03-02T09:00:00Z"),
    e("c2:3", "c2", "node_cancelled", "pay", "2026-03-02T09:30:00Z"),
    e("c1:3", "c1", "node_completed", "check", "2026-03-02T10:00:00Z"),
]


def run(path, **kw):
    out = io.BytesIO()
    summary = import_xes(str(path), out, **kw)
    return [orjson.loads(line) for line in out.getvalue().splitlines()], summary.as_dict()


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "claims-2026.xes"
    path.write_text(LOG)
    return path


def test_lifecycle_mode_maps_transitions_attributes_and_orders_by_time(log):
    events, summary = run(log)
    assert events == EXPECTED
    assert summary == {"traces": 3, "events_written": 8, "skipped": {
        "lifecycle_schedule": 1, "no_lifecycle": 1, "no_timestamp": 1, "trace_without_name": 1}}


def test_process_name_from_the_flag_the_log_or_the_file_name(log, tmp_path):
    events, _ = run(log, process="insurance")
    assert {x["process"] for x in events} == {"insurance"}
    nameless = tmp_path / "some-log.xes.gz"
    with gzip.open(nameless, "wt") as f:
        f.write(LOG.replace('<string key="concept:name" value="claims"/>', ""))
    events, _ = run(nameless)
    assert {x["process"] for x in events} == {"some-log"}


def test_gzip_gives_the_same_events(log, tmp_path):
    packed = tmp_path / "claims.xes.gz"
    packed.write_bytes(gzip.compress(log.read_bytes()))
    assert run(packed) == run(log)


def test_events_without_lifecycle_become_runs_of_no_time_with_instant_as_run(log):
    events, summary = run(log, instant_as_run=True)
    instant = [x for x in events if x["node"] == "note"]
    assert instant == [e("c1:5:start", "c1", "node_started", "note", "2026-03-02T10:05:00Z"),  # no offset: UTC
                       e("c1:5:complete", "c1", "node_completed", "note", "2026-03-02T10:05:00Z")]
    assert "no_lifecycle" not in summary["skipped"] and summary["events_written"] == 10


SOJOURN = "<log xes.version=\"2.0\">" + trace(
    "t1",
    xes_event("New", None, "2026-03-02T08:00:00Z", '<string key="channel" value="mail"/>'),
    xes_event("Working", None, "2026-03-02T09:00:00Z"),
    xes_event("Working", "complete", "2026-03-02T09:00:00Z"),
    xes_event("Closed", None, "2026-03-02T12:00:00Z"),
    xes_event("Closed", "start", "2026-03-02T12:00:00Z"),  # not a status change: skipped in sojourn mode
) + trace("t2", xes_event("New", None, "2026-03-02T10:00:00Z")) + "</log>"


def test_sojourn_mode_turns_status_changes_into_runs_that_replay_without_invalid_events(tmp_path):
    path = tmp_path / "tickets.xes"
    path.write_text(SOJOURN)
    events, summary = run(path, mode="sojourn")
    p = "tickets"
    assert events == [
        e("t1:0:start", "t1", "node_started", "New", "2026-03-02T08:00:00Z", {"channel": "mail"}, p),
        e("t1:1:end", "t1", "node_completed", "New", "2026-03-02T09:00:00Z", None, p),
        e("t1:1:start", "t1", "node_started", "Working", "2026-03-02T09:00:00Z", None, p),
        e("t1:2:end", "t1", "node_completed", "Working", "2026-03-02T09:00:00Z", None, p),
        e("t1:2:start", "t1", "node_started", "Working", "2026-03-02T09:00:00Z", None, p),
        e("t2:0:start", "t2", "node_started", "New", "2026-03-02T10:00:00Z", None, p),
        e("t2:1:end", "t2", "node_completed", "New", "2026-03-02T10:00:00Z", None, p),
        e("t2:end", "t2", "order_completed", None, "2026-03-02T10:00:00Z", None, p),
        e("t1:3:end", "t1", "node_completed", "Working", "2026-03-02T12:00:00Z", None, p),
        e("t1:3:start", "t1", "node_started", "Closed", "2026-03-02T12:00:00Z", None, p),
        e("t1:4:end", "t1", "node_completed", "Closed", "2026-03-02T12:00:00Z", None, p),
        e("t1:end", "t1", "order_completed", None, "2026-03-02T12:00:00Z", None, p),
    ]
    assert summary == {"traces": 2, "events_written": 12, "skipped": {"lifecycle_start": 1}}
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "tickets.yaml").write_text("process: tickets\norder: {commitment: 2h, tolerance: 4h}\nnodes:\n"
                                           "  New: {commitment: 30m, tolerance: 2h}\n  Working: {commitment: 2h, "
                                           "tolerance: 3h}\n  Closed: {commitment: 1m, tolerance: 1m}\n")
    out = tmp_path / "tickets.jsonl"
    out.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in events))
    result = replay_file(load_policy_dir(policies)[0], str(out))
    assert set(result["invalid"].values()) == {0}
    rows = {r["node"]: r for r in result["summary"]}
    assert rows["New"]["completed_acceptable"] == 1 and rows["New"]["completed_normal"] == 1  # 1h, 0s
    assert rows["Working"]["duration_s"]["count"] == 2 and rows["Working"]["duration_s"]["max"] == 3 * 3600.0
    assert rows["__order__"]["completed_acceptable"] == 1 and rows["__order__"]["completed_normal"] == 1  # 4h, 0s


def test_malformed_xml_is_one_clear_line_and_exit_2_with_nothing_written(tmp_path, capsys):
    bad = tmp_path / "bad.xes"
    bad.write_text(LOG.replace("</trace>\n  <trace>", "</trace>\n  <trace", 1))
    with pytest.raises(XesError, match=r"not well-formed XML at line \d+, column \d+"):
        run(bad)
    out = tmp_path / "out.jsonl"
    assert slamon(["import", "xes", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"slamon import xes: {bad}: not well-formed XML at line ") and len(err.splitlines()) == 1
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.xes"]
    cut = tmp_path / "cut.xes.gz"
    cut.write_bytes(gzip.compress(LOG.encode())[:300])
    assert slamon(["import", "xes", str(cut)]) == 2
    assert "the compressed data is damaged or cut short" in capsys.readouterr().err
    other = tmp_path / "other.xes"
    other.write_text("<html><body/></html>")
    assert slamon(["import", "xes", str(other)]) == 2
    assert "not an XES log (the root element is <html>" in capsys.readouterr().err
    assert slamon(["import", "xes", str(tmp_path / "missing.xes")]) == 2


def test_the_command_writes_gzip_and_a_summary_on_stderr(log, tmp_path, capsysbinary):
    out = tmp_path / "events.jsonl.gz"
    assert slamon(["import", "xes", str(log), "--out", str(out), "--process", "claims"]) == 0
    assert [orjson.loads(x) for x in gzip.decompress(out.read_bytes()).splitlines()] == EXPECTED
    assert orjson.loads(capsysbinary.readouterr().err)["events_written"] == 8
    assert slamon(["import", "xes", str(log)]) == 0
    captured = capsysbinary.readouterr()
    assert [orjson.loads(x) for x in captured.out.splitlines()] == EXPECTED


def export_xes(events: list[dict], path: Path) -> None:
    """The dataset's events as an XES log: one trace per order, its events in the order of the file."""
    traces: dict[str, list[dict]] = {}
    for ev in events:
        traces.setdefault(ev["order_id"], []).append(ev)
    with gzip.open(path, "wt") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1.0" xmlns="http://www.xes-standard.org/">'
                '\n<string key="concept:name" value="loan_application"/>\n')
        for order, evs in traces.items():
            f.write(f"<trace><string key=\"concept:name\" value={quoteattr(order)}/>\n")
            for ev in evs:
                transition = {"node_started": "start", "node_completed": "complete"}[ev["type"]]
                f.write(f"<event><string key=\"concept:name\" value={quoteattr(ev['node'])}/><string "
                        f"key=\"lifecycle:transition\" value=\"{transition}\"/><date key=\"time:timestamp\" "
                        f"value=\"{ev['at']}\"/><string key=\"source\" value={quoteattr(ev['event_id'])}/></event>\n")
            f.write("</trace>\n")
        f.write("</log>\n")


@pytest.mark.skipif(not DATASET.is_dir(), reason="the shared BPIC 2017 sample is not here")
def test_the_bpic_2017_sample_exported_as_xes_imports_back_to_the_same_runs(tmp_path):
    original = [orjson.loads(x) for x in gzip.open(DATASET / "events.jsonl.gz")]
    xes = tmp_path / "bpic2017.xes.gz"
    export_xes(original, xes)
    out = tmp_path / "imported.jsonl"
    with out.open("wb") as f:
        summary = import_xes(str(xes), f, chunk=40_000)  # spilled to sorted runs and merged
    assert summary.as_dict() == {"traces": len({x["order_id"] for x in original}), "events_written": len(original),
                                 "skipped": {}}
    imported = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    key = lambda x: (x["order_id"], x["node"], x["type"], parse_instant(x["at"]))  # noqa: E731
    assert Counter(map(key, imported)) == Counter(map(key, original))
    times = [parse_instant(x["at"]) for x in imported]
    assert times == sorted(times)
    assert all(x["attrs"] == {"source": y} for x, y in zip(imported, (x["attrs"]["source"] for x in imported),
                                                            strict=True))
    policies, _ = load_policy_dir(DATASET / "policies")
    back, first = replay_file(policies, str(out)), replay_file(policies, str(DATASET / "events.jsonl.gz"))
    assert set(back["invalid"].values()) == {0}
    assert back["summary"] == first["summary"] and back["now"] == first["now"]
    assert sorted(w["crossed_at"] for w in back["warnings"]) == sorted(w["crossed_at"] for w in first["warnings"])


def test_nested_attributes_prefixes_entities_and_odd_layouts_as_xml_reads_them(tmp_path):
    """Read by expat as the events arrive: meta-attributes inside a scalar are ignored; a list without <values>
    takes its own children; containers nest; prefixed elements, entities, comments, CDATA and attribute order
    are XML's business; a log name after the first trace is not the process name; a trace's event outside
    an <event> is not one."""
    body = """<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<x:log xmlns:x="http://www.xes-standard.org/" xes.version="1.0">
 <x:trace><x:string value="t&amp;1" key="concept:name"/><!-- c --><x:string key="other" value="ignored"/>
  <x:event>
   <x:string key="concept:name" value="a&#233;"><x:string key="meta" value="m"/></x:string>
   <x:string key="lifecycle:transition" value=" Start "/>
   <x:date key="time:timestamp" value="2026-03-02T09:00:00+01:00"/>
   <x:list key="plain"><x:int key="i" value="1"/><x:string key="s" value="two"/></x:list>
   <x:container key="c"><x:container key="d"><x:float key="e" value="inf"/></x:container>
     <x:boolean key="b" value=" TRUE "/></x:container>
   <x:string key="note" value="line&#10;break"/>
   <x:int key="bad" value="x1"/>
  </x:event>
  <x:string key="late" value="trace attribute after an event"/>
 </x:trace>
 <x:string key="concept:name" value="too-late"/>
 <x:trace><x:string key="concept:name" value="t2"/>
  <x:event><x:string key="concept:name" value="b"/><x:string key="lifecycle:transition" value="complete"/>
   <x:date key="time:timestamp" value="2026-03-02T07:00:00"/></x:event>
 </x:trace>
</x:log>
"""
    path = tmp_path / "odd.xes"
    path.write_text(body)
    events, summary = run(path)
    assert summary == {"traces": 2, "events_written": 2, "skipped": {}}
    assert events == [
        e("t2:0", "t2", "node_completed", "b", "2026-03-02T07:00:00Z", process="odd"),
        e("t&1:0", "t&1", "node_started", "a\u00e9", "2026-03-02T09:00:00+01:00",
          {"plain": [1, "two"], "c": {"d": {"e": "inf"}, "b": True}, "note": "line\nbreak", "bad": "x1"},
          process="odd"),
    ]
