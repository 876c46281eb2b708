"""A model of node runs written from CONTRACTS.md sections 1-3 for the tests of the analyses (report, backtest,
recommend): random orders on a 24x7 process with segments, owners, pauses, rework, cancellations and an order
level, and the runs they make, computed from the events alone (no engine, no replay).

Times are whole minutes from BASE. Elapsed is the span minus its paused minutes (24x7: every minute works).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from monitor.core.instants import parse_instant

KOLKATA = ZoneInfo("Asia/Kolkata")  # some event times are written with its +05:30 offset
BASE = datetime(2026, 3, 5, 0, 0, tzinfo=UTC)  # data spans the US spring clock change (2026-03-08)
POLICY_YAML = """process: p
version: 3
order: {commitment: 3h, tolerance: 6h, owner: desk}
nodes:
  a: {commitment: 60m, tolerance: 2h, owner: ops}
  b: {commitment: 30m, tolerance: 30m}
segments:
  gold:
    a: {commitment: 20m, owner: gold-desk}
"""
# the oracle's own reading of POLICY_YAML: (commitment, tolerance, owner) in minutes, per (node, segment)
LIMITS = {("a", "default"): (60, 120, "ops"), ("a", "gold"): (20, 120, "gold-desk"), ("b", None): (30, 30, None),
          ("__order__", None): (180, 360, "desk")}
NODES = ("a", "b")


def limits(node: str, segment: str) -> tuple[int, int, str | None]:
    return LIMITS.get((node, segment)) or LIMITS.get((node, "default")) or LIMITS[(node, None)]


def at(minute: int) -> str:
    t = BASE + timedelta(minutes=minute)
    return t.isoformat().replace("+00:00", "Z") if minute % 3 else t.astimezone(KOLKATA).isoformat()


def minute_of(text: str) -> int:
    return (parse_instant(text) - parse_instant(at(0))) // 60_000_000


def write_policies(root: Path, yaml_text: str = POLICY_YAML) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "p.yaml").write_text(yaml_text)
    return root


def write_events(path: Path, events: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def generate(seed: int, orders: int = 60, span: int = 5 * 24 * 60) -> list[dict]:
    """Events of random orders (in time order, ties in order of generation)."""
    rng = random.Random(seed)
    out: list[tuple[int, int, dict]] = []
    seq = 0

    def add(order: str, etype: str, minute: int, node: str | None = None, **extra: object) -> int:
        nonlocal seq
        if minute % 60 and rng.random() < 0.12:  # some events on the hour: where local days and weeks begin
            minute += 60 - minute % 60
        seq += 1
        e = {"event_id": f"{order}-{seq}", "order_id": order, "process": "p", "type": etype, "at": at(minute)}
        if node is not None:
            e["node"] = node
        e.update(extra)
        out.append((minute, seq, e))
        return minute

    for i in range(orders):
        order = f"o{i:03d}"
        t = rng.randrange(0, span)
        segment = rng.choice(["default", "gold", "silver"])
        open_node = None
        for _ in range(rng.randrange(1, 5)):
            node = rng.choice(NODES)
            t = add(order, "node_started", t, node, **({"segment": segment} if segment != "default" else {}))
            for _ in range(rng.randrange(0, 3)):
                t += rng.randrange(0, 90)
                t = add(order, "node_paused", t, node)
                if rng.random() < 0.15:  # a pause never resumed
                    break
                t += rng.randrange(0, 200)
                t = add(order, "node_resumed", t, node)
            else:
                t += rng.choice([rng.randrange(0, 40), rng.randrange(0, 400)])
            fate = rng.random()
            if fate < 0.15:
                open_node = node
                break
            t = add(order, "node_cancelled" if fate < 0.25 else "node_completed", t, node)
            t += rng.randrange(0, 60)
        fate = rng.random()
        if fate < 0.2 or (open_node is not None and fate < 0.5):
            add(order, "order_cancelled", t + rng.randrange(0, 100))
        elif open_node is None and fate < 0.65:
            add(order, "order_completed", t + rng.randrange(0, 100))
    out.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in out]


@dataclass
class ORun:
    order_id: str
    node: str
    number: int
    segment: str
    start: int
    end: int | None = None
    cancelled: bool = False
    pauses: list[tuple[int, int | None]] = field(default_factory=list)  # (start, end or None while paused)

    def elapsed(self, t: int) -> int:
        stop = t if self.end is None else min(t, self.end)
        paused = 0
        for ps, pe in self.pauses:
            lo, hi = max(ps, self.start), min(stop if pe is None else pe, stop)
            paused += max(0, hi - lo)
        return max(0, stop - self.start) - paused

    def limits(self) -> tuple[int, int, str | None]:
        return limits(self.node, self.segment)

    def level(self, t: int, c: int | None = None, tol: int | None = None) -> str:
        """The level of its elapsed at `t` against its limits (or the limits given)."""
        cc, tt, _ = self.limits()
        cc, tt = c if c is not None else cc, tol if tol is not None else tt
        e = self.elapsed(t)
        return "normal" if e <= cc else "acceptable" if e <= tt else "warning"

    def state_at(self, t: int, c: int | None = None, tol: int | None = None) -> str:
        """The state judged at `t`: ended at or before `t` by its end, otherwise in progress."""
        if self.end is not None and self.end <= t:
            return "cancelled" if self.cancelled else f"completed_{self.level(t, c, tol)}"
        return f"in_progress_{self.level(t, c, tol)}"


def runs_of(events: list[dict], now: int) -> list[ORun]:
    """Every run made by the events at or before minute `now` (the generator makes no invalid event)."""
    runs: list[ORun] = []
    open_runs: dict[tuple[str, str], ORun] = {}
    numbers: dict[tuple[str, str], int] = {}
    started: set[str] = set()
    for e in events:
        t, order, etype, node = minute_of(e["at"]), e["order_id"], e["type"], e.get("node")
        if t > now:
            continue
        if etype == "node_started":
            if order not in started:  # the order-level run starts with the order's first run
                started.add(order)
                r = ORun(order, "__order__", 1, e.get("segment", "default"), t)
                runs.append(r)
                open_runs[(order, "__order__")] = r
            numbers[(order, node)] = numbers.get((order, node), 0) + 1
            r = ORun(order, node, numbers[(order, node)], e.get("segment", "default"), t)
            runs.append(r)
            open_runs[(order, node)] = r
        elif etype == "node_paused":
            open_runs[(order, node)].pauses.append((t, None))
        elif etype == "node_resumed":
            r = open_runs[(order, node)]
            r.pauses[-1] = (r.pauses[-1][0], t)
        elif etype in ("node_completed", "node_cancelled"):
            r = open_runs.pop((order, node))
            r.end, r.cancelled = t, etype == "node_cancelled"
        else:
            for key in [k for k in open_runs if k[0] == order]:
                r = open_runs.pop(key)
                r.end, r.cancelled = t, etype == "order_cancelled"
    return runs
