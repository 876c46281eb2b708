"""Policies: per process, the commitment and tolerance of each node (and of the order), per segment, with the
calendar each run is counted in, the early warnings, the segments chosen by attributes and the status mapping.

A policy directory holds one YAML file per process and an optional `calendars.yaml` (CONTRACTS.md sections 3, 12).
Every problem is reported with the file, the field and what is wrong; nothing half-valid is ever returned.
Parsing works on plain dicts so the live monitor can build the same objects from the policies topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .calendar_docs import parse_calendars
from .calendars import ALWAYS_OPEN, AlwaysOpen, WeeklyCalendar
from .durations import DurationError, parse_duration
from .problems import Collector, PolicyError, Problem
from .segments import Matcher, first_match, parse_match
from .statuses import StatusTarget, parse_statuses
from .thresholds import Early, Grades, amounts, parse_early_warning
from .vocabulary import DEFAULT_SEGMENT, ORDER_NODE
from .yamlfile import read_yaml

__all__ = ["Calendar", "Limits", "Policy", "PolicyError", "PolicySet", "Problem", "build_policy_set",
           "load_policy_dir", "parse_calendars", "parse_policy"]

_POLICY_FIELDS = {"process", "version", "calendar", "early_warning", "target", "order", "nodes", "segments",
                  "statuses"}
_LIMIT_FIELDS = frozenset({"commitment", "tolerance", "owner"})
_NODE_FIELDS = _LIMIT_FIELDS | {"calendar"}
_SEGMENT_FIELDS = ("match", "calendar")  # a segment's own fields; its other keys are nodes

Calendar = AlwaysOpen | WeeklyCalendar


@dataclass(frozen=True, slots=True)
class Limits:
    """The effective limits of one node (or the order) for one segment, in microseconds of working time, and the
    calendar they are counted in."""

    commitment: int
    tolerance: int
    approaching: int | None  # early_warning * commitment, when the policy sets early_warning to one number
    owner: str | None
    calendar_name: str | None = None  # the most specific calendar (None: 24x7)
    grades: Grades | None = None  # when early_warning is a list: (fraction, amount) pairs, ascending


@dataclass(slots=True)
class Policy:
    process: str
    version: int
    calendar_name: str | None  # the process's calendar
    calendar: Calendar
    early_warning: Early | None
    target: float | None
    order: Limits | None
    nodes: dict[str, Limits]
    segments: dict[str, dict[str, Limits]]  # segment -> node -> effective limits where they differ from the node's
    source: str = ""
    document: dict[str, Any] = field(default_factory=dict)
    matchers: tuple[Matcher, ...] = ()  # segments with `match:`, in file order
    statuses: dict[str, StatusTarget] | None = None
    order_segments: dict[str, Limits] = field(default_factory=dict)  # the order's limits where a segment's calendar

    def limits(self, node: str, segment: str) -> Limits:
        """Effective limits of `node` for `segment`; unknown segments get the node's own limits."""
        seg = self.segments.get(segment)
        if seg is not None:
            lim = seg.get(node)
            if lim is not None:
                return lim
        return self.nodes[node]

    def order_limits(self, segment: str) -> Limits | None:
        """The order-level run's limits (no segment overrides) in its segment's calendar, else the process's."""
        return self.order_segments.get(segment, self.order)

    def calendar_for(self, node: str, segment: str) -> str | None:
        """The calendar a run of `node` (or `__order__`) in `segment` is counted in (None: 24x7)."""
        lim = self.order_limits(segment) if node == ORDER_NODE else self.limits(node, segment)
        return lim.calendar_name if lim is not None else self.calendar_name

    @property
    def calendar_names(self) -> list[str]:
        """Every calendar the policy uses, at any level."""
        limits = [*self.nodes.values(), *self.order_segments.values(), *([self.order] if self.order else []),
                  *(lim for seg in self.segments.values() for lim in seg.values())]
        return sorted({self.calendar_name, *(lim.calendar_name for lim in limits)} - {None})  # type: ignore[type-var]

    def segment_of(self, segment: str, attrs: dict[str, Any] | None) -> str:
        """The segment of a run whose starting event has `segment` and `attrs`: that segment when the policy names
        it, else the first segment whose `match:` holds, else the segment as given."""
        if self.matchers and segment not in self.segments:
            return first_match(self.matchers, segment, attrs) or segment
        return segment

    def segment_label(self, segment: str) -> str:
        """The segment as a metric label: only segments the policy names, others are `default`."""
        return segment if segment in self.segments else DEFAULT_SEGMENT


@dataclass(slots=True)
class PolicySet:
    policies: dict[str, Policy]
    calendars: dict[str, Calendar]
    calendar_documents: dict[str, Any] = field(default_factory=dict)

    def get(self, process: str) -> Policy | None:
        return self.policies.get(process)

    def segment_label(self, process: str, segment: str) -> str:
        """The metrics' segment label of a run: its segment when the process's policy names it, else default."""
        policy = self.policies.get(process)
        return policy.segment_label(segment) if policy is not None else DEFAULT_SEGMENT


# ---------------------------------------------------------------- one policy


class _Parse:
    """The reading of one policy document: where it came from, the calendars it may name, where problems go."""

    def __init__(self, source: str, calendars: dict[str, Calendar], errors: Collector):
        self.source, self.calendars, self.errors = source, calendars, errors

    def add(self, fld: str, problem: str) -> None:
        self.errors.add(self.source, fld, problem)

    def calendar(self, name: Any, fld: str) -> str | None:
        """A calendar named at `fld`: the name when calendars.yaml defines it; None (with a problem, unless the
        calendar's own problem is reported where it is defined) otherwise."""
        if name is None:
            return None
        if isinstance(name, str) and name in self.calendars:
            return name
        errors = self.errors
        if not isinstance(name, str) or not (errors.calendars_unreadable or name in errors.broken_calendars):
            self.add(fld, f"unknown calendar {name!r} (not in calendars.yaml)")
        return None

    def duration(self, value: Any, fld: str) -> int | None:
        if value is None:
            self.add(fld, "missing")
            return None
        try:
            us = parse_duration(value)
        except DurationError as exc:
            self.add(fld, f"unreadable duration: {exc}")
            return None
        if us <= 0:
            self.add(fld, f"must be positive, got {value!r}")
            return None
        return us

    def limits(self, spec: Any, base: dict[str, Any] | None, where: str, early: Early | None, calendar: str | None,
               fields: frozenset[str] = _NODE_FIELDS) -> Limits | None:
        """Effective limits from `spec`, falling back field by field to `base` (the node's own spec), counted in
        `calendar`."""
        if not isinstance(spec, dict):
            self.add(where, "expected a mapping with commitment and tolerance")
            return None
        for k in sorted(map(str, set(spec) - fields)):
            self.errors.ignored(self.source, f"{where}.{k}")
        merged = {**(base or {}), **spec}
        n = len(self.errors.problems)
        c = self.duration(merged.get("commitment"), f"{where}.commitment")
        t = self.duration(merged.get("tolerance"), f"{where}.tolerance")
        owner = merged.get("owner")
        if owner is not None and not isinstance(owner, str):
            self.add(f"{where}.owner", f"expected a text, got {owner!r}")
        if len(self.errors.problems) > n or c is None or t is None:
            return None
        if t < c:
            self.add(f"{where}.tolerance",
                     f"tolerance ({merged.get('tolerance')}) is less than commitment ({merged.get('commitment')})")
            return None
        approaching, grades = amounts(early, c, self.source, where, self.errors)
        return Limits(c, t, approaching, owner if isinstance(owner, str) else None, calendar, grades)


def _segment_field(key: Any, value: Any, raw_nodes: Any) -> bool:
    """Whether `key: value` under a segment is the segment's own `match` / `calendar` rather than the override of a
    node that happens to have that name (a mapping of node fields under a key the policy has as a node)."""
    if key not in _SEGMENT_FIELDS:
        return False
    is_node = isinstance(raw_nodes, dict) and key in raw_nodes
    return not (is_node and isinstance(value, dict) and set(value) <= _NODE_FIELDS)


def parse_policy(doc: Any, source: str, calendars: dict[str, Calendar], errors: Collector) -> Policy | None:
    n = len(errors.problems)
    if not isinstance(doc, dict):
        errors.add(source, "(file)", "expected a YAML mapping with process and nodes")
        return None
    p = _Parse(source, calendars, errors)
    for k in sorted(map(str, set(doc) - _POLICY_FIELDS)):
        errors.ignored(source, k)
    process = doc.get("process")
    if not isinstance(process, str) or not process.strip():
        p.add("process", "missing or not a text")
    version = doc.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        p.add("version", f"expected a non-negative integer, got {version!r}")
    cal_name = p.calendar(doc.get("calendar"), "calendar")
    early = parse_early_warning(doc.get("early_warning"), source, errors)
    target = doc.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1):
        p.add("target", f"expected a fraction between 0 and 1 (exclusive), got {target!r}")
        target = None
    order = None
    if doc.get("order") is not None:
        # the order-level run has no calendar of its own: its segment's, else the process's (section 12)
        order = p.limits(doc["order"], None, "order", early, cal_name, _LIMIT_FIELDS)
    raw_nodes = doc.get("nodes")
    nodes: dict[str, Limits] = {}
    if raw_nodes is None and order is None:
        p.add("nodes", "missing: a policy needs nodes (or an order-level SLA)")
    elif raw_nodes is not None and not isinstance(raw_nodes, dict):
        p.add("nodes", "expected a mapping of node names to limits")
    else:
        for name, spec in (raw_nodes or {}).items():
            if str(name) == ORDER_NODE:
                p.add(f"nodes.{name}", f"{ORDER_NODE} is reserved for the order-level run")
                continue
            own = p.calendar(spec.get("calendar"), f"nodes.{name}.calendar") if isinstance(spec, dict) else None
            lim = p.limits(spec, None, f"nodes.{name}", early, own or cal_name)
            if lim is not None:
                nodes[str(name)] = lim
    segments, order_segments, matchers = _segments(p, doc.get("segments"), raw_nodes, nodes, order, early)
    statuses = parse_statuses(doc.get("statuses"), raw_nodes, source, errors)
    if len(errors.problems) > n:
        return None
    return Policy(
        process=process.strip(), version=version, calendar_name=cal_name,
        calendar=calendars[cal_name] if cal_name is not None else ALWAYS_OPEN, early_warning=early,
        target=float(target) if target is not None else None, order=order, nodes=nodes, segments=segments,
        source=source, document=doc, matchers=matchers, statuses=statuses, order_segments=order_segments,
    )


def _segments(p: _Parse, raw: Any, raw_nodes: Any, nodes: dict[str, Limits], order: Limits | None,
              early: Early | None) -> tuple[dict[str, dict[str, Limits]], dict[str, Limits], tuple[Matcher, ...]]:
    """Per segment: the nodes' effective limits where they differ from the node's own (overridden fields, or the
    segment's calendar), the order's limits in the segment's calendar, and the `match:` conditions in file order."""
    segments: dict[str, dict[str, Limits]] = {}
    order_segments: dict[str, Limits] = {}
    matchers: list[Matcher] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        p.add("segments", "expected a mapping of segment names to node overrides")
        raw = {}
    for seg, spec in raw.items():
        seg = str(seg)
        if not isinstance(spec, dict):
            p.add(f"segments.{seg}", "expected a mapping of node names to limits")
            continue
        own = {k: v for k, v in spec.items() if _segment_field(k, v, raw_nodes)}
        seg_cal = p.calendar(own.get("calendar"), f"segments.{seg}.calendar")
        if "match" in own:
            conditions = parse_match(own["match"], p.source, f"segments.{seg}.match", p.errors)
            if conditions is not None:
                matchers.append((seg, conditions))
        seg_limits: dict[str, Limits] = {}
        for name, nspec in spec.items():
            if name in own:
                continue
            where = f"segments.{seg}.{name}"
            if not isinstance(raw_nodes, dict) or name not in raw_nodes:
                p.add(where, f"unknown node {name!r} (not under nodes)")
                continue
            base = raw_nodes[name] if isinstance(raw_nodes[name], dict) else {}
            cal = p.calendar(nspec.get("calendar"), f"{where}.calendar") if isinstance(nspec, dict) else None
            node_cal = nodes[name].calendar_name if name in nodes else None
            lim = p.limits(nspec, base, where, early, cal or seg_cal or node_cal)
            if lim is not None:
                seg_limits[str(name)] = lim
        if seg_cal is not None:
            for name, lim in nodes.items():
                seg_limits.setdefault(name, replace(lim, calendar_name=seg_cal))
            if order is not None:
                order_segments[seg] = replace(order, calendar_name=seg_cal)
        segments[seg] = seg_limits
    return segments, order_segments, tuple(matchers)


# ---------------------------------------------------------------- a policy set

def build_policy_set(
    documents: list[tuple[str, Any]], calendars_doc: Any = None, calendars_source: str = "calendars.yaml",
    *, calendars_unreadable: bool = False, problems: list[Problem] | None = None,
) -> tuple[PolicySet, list[Problem]]:
    """Build a policy set from (source, parsed document) pairs. Raises PolicyError listing every problem (those
    given in `problems` first) and the warnings.

    Returns the set and the warnings (unknown fields that were ignored). With `calendars_unreadable`, the calendars
    file could not be read (a problem already reported), so calendar names are not checked against it.
    """
    errors = Collector()
    errors.problems.extend(problems or ())
    errors.calendars_unreadable = calendars_unreadable
    calendars = parse_calendars(calendars_doc, calendars_source, errors)
    policies: dict[str, Policy] = {}
    for source, doc in documents:
        policy = parse_policy(doc, source, calendars, errors)
        if policy is None:
            continue
        if policy.process in policies:
            errors.add(source, "process", f"{policy.process!r} is also defined in {policies[policy.process].source}")
            continue
        policies[policy.process] = policy
    if errors.problems:
        raise PolicyError(errors.problems, errors.warnings)
    cal_docs = (calendars_doc or {}).get("calendars", {}) if isinstance(calendars_doc, dict) else {}
    return PolicySet(policies, dict(calendars), cal_docs), errors.warnings


def load_policy_dir(path: str | Path) -> tuple[PolicySet, list[Problem]]:
    """Load and validate a policy directory. Raises PolicyError (file, field, problem) on any problem."""
    root = Path(path)
    if not root.is_dir():
        raise PolicyError([Problem(str(root), "(directory)", "not a directory")])
    files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    problems: list[Problem] = []
    calendars_doc: Any = None
    calendars_source = str(root / "calendars.yaml")
    calendars_unreadable = False
    documents: list[tuple[str, Any]] = []
    for f in files:
        source = str(f)
        n = len(problems)
        doc = read_yaml(f, problems)
        if f.stem == "calendars":
            calendars_doc, calendars_source = doc, source
            calendars_unreadable = doc is None and len(problems) > n
        elif doc is not None or len(problems) == n:
            documents.append((source, doc))
    if not documents and not problems:
        problems.append(Problem(str(root), "(directory)", "no policy files (*.yaml) found"))
    return build_policy_set(documents, calendars_doc, calendars_source, calendars_unreadable=calendars_unreadable,
                            problems=problems)
