"""Status mappings (CONTRACTS.md section 12): what a `status_changed` event means for an order.

```yaml
statuses:
  New: triage                      # start a run of triage (completing the current status run), or resume it
  Awaiting Customer: {pause: resolution}
  Resolved: {end: completed}       # as order_completed
  Withdrawn: {end: cancelled}      # as order_cancelled
```

The order has at most one current status run: the run the last applied status started, while it is open.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .problems import Collector
from .vocabulary import ORDER_CANCELLED, ORDER_COMPLETED

# what a status does
START, PAUSE, END = "start", "pause", "end"
_ENDS = {"completed": ORDER_COMPLETED, "cancelled": ORDER_CANCELLED}
_FORMS = "a node name, {pause: NODE} or {end: completed | cancelled}"


class StatusTarget(NamedTuple):
    action: str  # START, PAUSE or END
    target: str  # START / PAUSE: the node; END: the order event it stands for (order_completed, order_cancelled)

    def describe(self) -> str:
        if self.action == START:
            return f"runs {self.target}"
        if self.action == PAUSE:
            return f"pauses {self.target}"
        return f"ends the order ({'completed' if self.target == ORDER_COMPLETED else 'cancelled'})"


def parse_statuses(spec: Any, nodes: Any, source: str, errors: Collector) -> dict[str, StatusTarget] | None:
    """The status mapping of a policy (None when it has none); problems for anything else than the three forms, a
    node the policy does not have, or a status name that is not a text."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        errors.add(source, "statuses", f"expected a mapping of statuses to {_FORMS}")
        return None
    known = set(nodes) if isinstance(nodes, dict) else set()
    out: dict[str, StatusTarget] = {}
    for status, value in spec.items():
        where = f"statuses.{status}"
        if not isinstance(status, str):
            errors.add(source, where, f"a status is a text: quote it ('{status}')")
            continue
        target = _target(value, source, where, errors)
        if target is None:
            continue
        if target.action != END and target.target not in known:
            errors.add(source, where if target.action == START else f"{where}.pause",
                       f"unknown node {target.target!r} (not under nodes)")
            continue
        out[status] = target
    return out


def _target(value: Any, source: str, where: str, errors: Collector) -> StatusTarget | None:
    if isinstance(value, str) and value:
        return StatusTarget(START, value)
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "pause" and isinstance(arg, str) and arg:
            return StatusTarget(PAUSE, arg)
        if key == "end":
            if arg in _ENDS:
                return StatusTarget(END, _ENDS[arg])
            errors.add(source, f"{where}.end", f"expected completed or cancelled, got {arg!r}")
            return None
    errors.add(source, where, f"expected {_FORMS}, got {value!r}")
    return None


def status_problem(target: StatusTarget, current: Any, open_run: Any) -> str | None:
    """Why a status cannot be applied to an order whose current status run is `current` (None: none) and whose open
    run of the target node is `open_run` (None: none); None when it can."""
    if target.action == START:
        if open_run is not None and open_run is not current:
            return f"node {target.target!r} has an open run that a node_started opened, not a status"
        return None
    if target.action == PAUSE:
        if current is None:
            return f"no current status run to pause (the status pauses {target.target!r})"
        if current.node != target.target:
            return f"the current status run is of {current.node!r}, not {target.target!r}"
    return None
