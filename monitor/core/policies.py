"""Policies: per process, the commitment and tolerance of each node (and of the order), per segment.

A policy directory holds one YAML file per process and an optional `calendars.yaml` (CONTRACTS.md section 3).
Every problem is reported with the file, the field and what is wrong; nothing half-valid is ever returned.
Parsing works on plain dicts so the live monitor can build the same objects from the policies topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from .calendars import ALWAYS_OPEN, WEEKDAYS, AlwaysOpen, CalendarError, WeeklyCalendar, parse_range
from .durations import DurationError, parse_duration
from .vocabulary import DEFAULT_SEGMENT, ORDER_NODE

_POLICY_FIELDS = {"process", "version", "calendar", "early_warning", "target", "order", "nodes", "segments"}
_LIMIT_FIELDS = {"commitment", "tolerance", "owner"}

Calendar = AlwaysOpen | WeeklyCalendar


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.problem}"


class PolicyError(ValueError):
    """One or more problems that make a policy set unusable; `warnings` are the ignored unknown fields found on the
    way, which a user fixing the problems wants to see too."""

    def __init__(self, problems: list[Problem], warnings: list[Problem] | None = None):
        self.problems = problems
        self.warnings = list(warnings or ())
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class Limits:
    """The effective limits of one node (or the order) for one segment, in microseconds of working time."""

    commitment: int
    tolerance: int
    approaching: int | None  # early_warning * commitment, when the policy sets early_warning
    owner: str | None


@dataclass(slots=True)
class Policy:
    process: str
    version: int
    calendar_name: str | None
    calendar: Calendar
    early_warning: float | None
    target: float | None
    order: Limits | None
    nodes: dict[str, Limits]
    segments: dict[str, dict[str, Limits]]  # segment -> node -> effective limits (only overridden segments)
    source: str = ""
    document: dict[str, Any] = field(default_factory=dict)

    def limits(self, node: str, segment: str) -> Limits:
        """Effective limits of `node` for `segment`; unknown segments get the node's own limits."""
        seg = self.segments.get(segment)
        if seg is not None:
            lim = seg.get(node)
            if lim is not None:
                return lim
        return self.nodes[node]

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


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        # calendars that are defined but could not be built (already reported): a policy naming one is not also
        # "unknown calendar"; all of them when the calendars file itself could not be read
        self.broken_calendars: set[str] = set()
        self.calendars_unreadable = False

    def add(self, file: str, fld: str, problem: str) -> None:
        self.problems.append(Problem(file, fld, problem))


# ---------------------------------------------------------------- calendars


def parse_calendars(doc: Any, source: str, errors: _Collector) -> dict[str, WeeklyCalendar]:
    out: dict[str, WeeklyCalendar] = {}
    if doc is None:
        return out
    if not isinstance(doc, dict) or not isinstance(doc.get("calendars"), dict):
        errors.add(source, "calendars", "expected a mapping `calendars:` of calendar names")
        errors.calendars_unreadable = True
        return out
    for name, spec in doc["calendars"].items():
        where = f"calendars.{name}"
        errors.broken_calendars.add(str(name))  # until it is built below
        if not isinstance(spec, dict):
            errors.add(source, where, "expected a mapping with timezone, hours and holidays")
            continue
        tz = spec.get("timezone")
        if not isinstance(tz, str) or not tz:
            errors.add(source, f"{where}.timezone", "missing or not a time zone name (e.g. Europe/Berlin)")
            continue
        hours: dict[int, list[tuple[int, int]]] = {}
        raw_hours = spec.get("hours")
        if not isinstance(raw_hours, dict) or not raw_hours:
            problem = "expected a mapping of weekdays (mon..sun) to ranges"
            errors.add(source, f"{where}.hours", f"no working hours: {problem}" if raw_hours == {} else problem)
            continue
        ok = True
        for day, ranges in raw_hours.items():
            key = str(day).lower()[:3]
            if key not in WEEKDAYS:
                errors.add(source, f"{where}.hours.{day}", "not a weekday (mon, tue, wed, thu, fri, sat, sun)")
                ok = False
                continue
            if isinstance(ranges, str):
                ranges = [ranges]
            if not isinstance(ranges, list):
                errors.add(source, f"{where}.hours.{day}", "expected a list of ranges like \"09:00-18:00\"")
                ok = False
                continue
            for r in ranges:
                try:
                    hours.setdefault(WEEKDAYS.index(key), []).append(parse_range(r))
                except CalendarError as exc:
                    errors.add(source, f"{where}.hours.{day}", str(exc))
                    ok = False
        holidays: set[date] = set()
        raw_holidays = spec.get("holidays") or []
        if not isinstance(raw_holidays, list):
            errors.add(source, f"{where}.holidays", "expected a list of dates like \"2026-10-01\"")
            continue
        for h in raw_holidays:
            try:
                holidays.add(h if isinstance(h, date) else date.fromisoformat(str(h)))
            except ValueError:
                errors.add(source, f"{where}.holidays", f"{h!r} is not a date like 2026-10-01")
                ok = False
        if not ok:
            continue
        try:
            out[str(name)] = WeeklyCalendar(str(name), tz, hours, holidays)
            errors.broken_calendars.discard(str(name))
        except CalendarError as exc:
            field_name = f"{where}.timezone" if "time zone" in str(exc) else f"{where}.hours"
            errors.add(source, field_name, str(exc))
    return out


# ---------------------------------------------------------------- policies


def _duration(value: Any, source: str, fld: str, errors: _Collector) -> int | None:
    if value is None:
        errors.add(source, fld, "missing")
        return None
    try:
        us = parse_duration(value)
    except DurationError as exc:
        errors.add(source, fld, f"unreadable duration: {exc}")
        return None
    if us <= 0:
        errors.add(source, fld, f"must be positive, got {value!r}")
        return None
    return us


def _limits(
    spec: Any, base: dict[str, Any] | None, source: str, where: str, early: float | None, errors: _Collector
) -> Limits | None:
    """Effective limits from `spec`, falling back field by field to `base` (the node's own spec)."""
    if not isinstance(spec, dict):
        errors.add(source, where, "expected a mapping with commitment and tolerance")
        return None
    unknown = set(spec) - _LIMIT_FIELDS
    for k in sorted(map(str, unknown)):
        errors.warnings.append(Problem(source, f"{where}.{k}", "unknown field, ignored"))
    merged = {**(base or {}), **spec}
    n = len(errors.problems)
    c = _duration(merged.get("commitment"), source, f"{where}.commitment", errors)
    t = _duration(merged.get("tolerance"), source, f"{where}.tolerance", errors)
    owner = merged.get("owner")
    if owner is not None and not isinstance(owner, str):
        errors.add(source, f"{where}.owner", f"expected a text, got {owner!r}")
    if len(errors.problems) > n or c is None or t is None:
        return None
    if t < c:
        errors.add(
            source,
            f"{where}.tolerance",
            f"tolerance ({merged.get('tolerance')}) is less than commitment ({merged.get('commitment')})",
        )
        return None
    approaching = round(early * c) if early is not None else None
    return Limits(c, t, approaching, owner if isinstance(owner, str) else None)


def parse_policy(doc: Any, source: str, calendars: dict[str, Calendar], errors: _Collector) -> Policy | None:
    n = len(errors.problems)
    if not isinstance(doc, dict):
        errors.add(source, "(file)", "expected a YAML mapping with process and nodes")
        return None
    for k in sorted(map(str, set(doc) - _POLICY_FIELDS)):
        errors.warnings.append(Problem(source, k, "unknown field, ignored"))
    process = doc.get("process")
    if not isinstance(process, str) or not process.strip():
        errors.add(source, "process", "missing or not a text")
    version = doc.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        errors.add(source, "version", f"expected a non-negative integer, got {version!r}")
    cal_name = doc.get("calendar")
    calendar: Calendar = ALWAYS_OPEN
    if cal_name is not None:
        if isinstance(cal_name, str) and cal_name in calendars:
            calendar = calendars[cal_name]
        elif not isinstance(cal_name, str) or not (errors.calendars_unreadable or cal_name in errors.broken_calendars):
            errors.add(source, "calendar", f"unknown calendar {cal_name!r} (not in calendars.yaml)")
        # else: the calendar's own problem is reported where it is defined; the set is rejected for it
    early = doc.get("early_warning")
    if early is not None and (isinstance(early, bool) or not isinstance(early, int | float) or not 0 < early < 1):
        errors.add(source, "early_warning", f"expected a fraction between 0 and 1 (exclusive), got {early!r}")
        early = None
    target = doc.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1):
        errors.add(source, "target", f"expected a fraction between 0 and 1 (exclusive), got {target!r}")
        target = None
    order = None
    if doc.get("order") is not None:
        order = _limits(doc["order"], None, source, "order", early, errors)
    raw_nodes = doc.get("nodes")
    nodes: dict[str, Limits] = {}
    if raw_nodes is None and order is None:
        errors.add(source, "nodes", "missing: a policy needs nodes (or an order-level SLA)")
    elif raw_nodes is not None and not isinstance(raw_nodes, dict):
        errors.add(source, "nodes", "expected a mapping of node names to limits")
    else:
        for name, spec in (raw_nodes or {}).items():
            if str(name) == ORDER_NODE:
                errors.add(source, f"nodes.{name}", f"{ORDER_NODE} is reserved for the order-level run")
                continue
            lim = _limits(spec, None, source, f"nodes.{name}", early, errors)
            if lim is not None:
                nodes[str(name)] = lim
    segments: dict[str, dict[str, Limits]] = {}
    raw_segments = doc.get("segments") or {}
    if not isinstance(raw_segments, dict):
        errors.add(source, "segments", "expected a mapping of segment names to node overrides")
        raw_segments = {}
    for seg, overrides in raw_segments.items():
        if not isinstance(overrides, dict):
            errors.add(source, f"segments.{seg}", "expected a mapping of node names to limits")
            continue
        seg_limits: dict[str, Limits] = {}
        for name, spec in overrides.items():
            where = f"segments.{seg}.{name}"
            if not isinstance(raw_nodes, dict) or name not in raw_nodes:
                errors.add(source, where, f"unknown node {name!r} (not under nodes)")
                continue
            base = raw_nodes[name] if isinstance(raw_nodes[name], dict) else {}
            lim = _limits(spec, base, source, where, early, errors)
            if lim is not None:
                seg_limits[str(name)] = lim
        segments[str(seg)] = seg_limits
    if len(errors.problems) > n:
        return None
    return Policy(
        process=process.strip(),
        version=version,
        calendar_name=cal_name,
        calendar=calendar,
        early_warning=float(early) if early is not None else None,
        target=float(target) if target is not None else None,
        order=order,
        nodes=nodes,
        segments=segments,
        source=source,
        document=doc,
    )


def build_policy_set(
    documents: list[tuple[str, Any]], calendars_doc: Any = None, calendars_source: str = "calendars.yaml",
    *, calendars_unreadable: bool = False, problems: list[Problem] | None = None,
) -> tuple[PolicySet, list[Problem]]:
    """Build a policy set from (source, parsed document) pairs. Raises PolicyError listing every problem (those
    given in `problems` first) and the warnings.

    Returns the set and the warnings (unknown fields that were ignored). With `calendars_unreadable`, the calendars
    file could not be read (a problem already reported), so calendar names are not checked against it.
    """
    errors = _Collector()
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
        doc = _read_yaml(f, problems)
        if f.stem == "calendars":
            calendars_doc, calendars_source = doc, source
            calendars_unreadable = doc is None and len(problems) > n
        elif doc is not None or len(problems) == n:
            documents.append((source, doc))
    if not documents and not problems:
        problems.append(Problem(str(root), "(directory)", "no policy files (*.yaml) found"))
    return build_policy_set(documents, calendars_doc, calendars_source, calendars_unreadable=calendars_unreadable,
                            problems=problems)


# ---------------------------------------------------------------- reading YAML

_MAX_YAML_DEPTH = 64  # mappings and lists nested deeper than this are no policy (and a policy is sent as JSON)


def _read_yaml(f: Path, problems: list[Problem]) -> Any:
    """The document of one YAML file, or None with its problems added: unreadable bytes, a YAML syntax error
    (with its line), a value YAML cannot build (`2026-02-30`), an alias that contains itself, or nesting beyond
    any policy's. A key given twice in a mapping (YAML itself keeps the last one without a word) is a problem
    too, but the document is still returned, to be checked for its other problems and warnings."""
    import yaml  # local import: the engine itself needs no YAML

    source = str(f)
    try:
        data = f.read_bytes()
    except OSError as exc:
        problems.append(Problem(source, "(file)", f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.append(Problem(source, f"line {line}", f"not UTF-8 text (byte 0x{data[exc.start]:02x})"))
        return None
    try:
        loader = _loader_class()(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, found before parsing
        line = text.count("\n", 0, exc.position) + 1
        problems.append(Problem(source, f"line {line}", f"not readable YAML: {exc.reason} (#x{exc.character:04x})"))
        return None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        found, usable = _structure_problems(node, loader, source)
        problems.extend(found)
        # a duplicate key is reported, and the document still checked (as YAML reads it) for its other problems
        return loader.construct_document(node) if usable else None
    except yaml.MarkedYAMLError as exc:
        where, context = _position(exc.problem_mark or exc.context_mark), exc.context
        if context and exc.context_mark is not None and exc.problem_mark is not None:
            context = f"{context} ({_position(exc.context_mark)})"
        what = "; ".join(str(x) for x in (context, exc.problem) if x)
        problems.append(Problem(source, where, f"not readable YAML: {what}"))
    except yaml.YAMLError as exc:
        problems.append(Problem(source, "(file)", f"not readable YAML: {exc}".replace("\n", " ")))
    except RecursionError:
        problems.append(Problem(source, "(file)", f"not readable YAML: nested more than {_MAX_YAML_DEPTH} levels"))
    finally:
        loader.dispose()
    return None


def _position(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(file)"


def _structure_problems(root: Any, loader: Any, source: str) -> tuple[list[Problem], bool]:
    """Duplicate keys, self-containing aliases and excessive nesting in a composed YAML node tree, each with its
    key path (`nodes.site_survey`), in the order of their lines; and whether the tree can be built and checked
    (not with the last two)."""
    import yaml

    found: list[tuple[int, Problem]] = []
    usable = True
    seen: set[int] = set()  # nodes already checked (an alias shares its anchor's node)
    stack: list[tuple[Any, str, int, frozenset[int]]] = [(root, "", 1, frozenset())]
    while stack:
        node, path, depth, above = stack.pop()
        line = node.start_mark.line + 1
        if id(node) in above or depth > _MAX_YAML_DEPTH:
            where = path if len(path) <= 60 else f"{path[:57]}..."
            problem = "an alias that contains itself" if id(node) in above else \
                f"nested more than {_MAX_YAML_DEPTH} levels deep"
            found.append((line, Problem(source, where, problem)))
            usable = False
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        inside = above | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]", depth + 1, inside) for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: keys given next to it override it
                    continue
                scalar = isinstance(key_node, yaml.ScalarNode)
                key = loader.construct_object(key_node) if scalar else key_node
                name = str(key) if scalar else "(complex key)"
                here = f"{path}.{name}" if path else name
                key_line = key_node.start_mark.line + 1
                try:
                    earlier = first_line.get(key)
                    first_line.setdefault(key, key_line)
                except TypeError:  # an unhashable key: building the document reports it
                    earlier = None
                if earlier is not None:
                    found.append((key_line, Problem(source, here, f"duplicate key (line {key_line}, first on line "
                                                                  f"{earlier}): YAML would silently keep the last")))
                stack.append((value_node, here, depth + 1, inside))
    found.sort(key=lambda item: item[0])
    return [problem for _, problem in found], usable


def _loader_class() -> Any:
    """A YAML SafeLoader whose errors building a value (a date like 2026-02-30, an integer of thousands of
    digits) carry the line of that value, like its syntax errors."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class Loader(yaml.SafeLoader):
            def construct_object(self, node: Any, deep: bool = False) -> Any:
                try:
                    return super().construct_object(node, deep)
                except (ValueError, OverflowError) as exc:
                    raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from None

        _LOADER = Loader
    return _LOADER


_LOADER: Any = None
