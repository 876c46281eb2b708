"""Small builders shared by the core's unit tests."""

from __future__ import annotations

from typing import Any

from monitor.core.engine import OrderState, Run
from monitor.core.events import Event, event_from_object
from monitor.core.instants import parse_instant
from monitor.core.policies import PolicySet, build_policy_set
from monitor.core.records import outcome_record, warning_record

T = parse_instant


def policies(*docs: dict[str, Any], calendars: dict[str, Any] | None = None) -> PolicySet:
    ps, _ = build_policy_set([(f"{d['process']}.yaml", d) for d in docs], calendars)
    return ps


_seq = [0]


def ev(etype: str, at: str, order: str = "o1", node: str | None = "n", process: str = "p",
       event_id: str | None = None, **extra: Any) -> Event:
    _seq[0] += 1
    obj: dict[str, Any] = {"event_id": event_id or f"e{_seq[0]}", "order_id": order, "process": process,
                           "type": etype, "at": at, **extra}
    if node is not None and etype.startswith("node_"):
        obj["node"] = node
    return event_from_object(obj)


class Recorder:
    """A sink keeping every warning and outcome as the contract's records."""

    def __init__(self) -> None:
        self.warnings: list[dict[str, Any]] = []
        self.outcomes: list[dict[str, Any]] = []
        self.started: list[tuple[str, str, int]] = []

    def run_started(self, state: OrderState, run: Run) -> None:
        self.started.append((state.order_id, run.node, run.number))

    def warning(self, state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> None:
        self.warnings.append(warning_record(state, run, kind, run_state, at, elapsed))

    def outcome(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None:
        self.outcomes.append(outcome_record(state, run, run_state, ended_at, elapsed))

    def kinds(self) -> list[tuple[str, str]]:
        return [(w["kind"], w["crossed_at"]) for w in self.warnings]
