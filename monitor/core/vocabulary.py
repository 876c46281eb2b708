"""The words of CONTRACTS.md, once: the seven states, the three levels, crossing and warning kinds, event types,
the reasons an event is rejected, and the reserved node and segment names. Everything else imports them."""

from __future__ import annotations

# The seven states of a run (section 1).
COMPLETED_NORMAL = "completed_normal"
COMPLETED_ACCEPTABLE = "completed_acceptable"
COMPLETED_WARNING = "completed_warning"
IN_PROGRESS_NORMAL = "in_progress_normal"
IN_PROGRESS_ACCEPTABLE = "in_progress_acceptable"
IN_PROGRESS_WARNING = "in_progress_warning"
CANCELLED = "cancelled"
STATES = (
    COMPLETED_NORMAL, COMPLETED_ACCEPTABLE, COMPLETED_WARNING,
    IN_PROGRESS_NORMAL, IN_PROGRESS_ACCEPTABLE, IN_PROGRESS_WARNING, CANCELLED,
)
# The final states of a run, as outcomes report them.
OUTCOME_STATES = (COMPLETED_NORMAL, COMPLETED_ACCEPTABLE, COMPLETED_WARNING, CANCELLED)

# A run's level: where its elapsed working time stands against commitment and tolerance (index = level).
LEVELS = ("normal", "acceptable", "warning")
COMPLETED_BY_LEVEL = (COMPLETED_NORMAL, COMPLETED_ACCEPTABLE, COMPLETED_WARNING)
IN_PROGRESS_BY_LEVEL = (IN_PROGRESS_NORMAL, IN_PROGRESS_ACCEPTABLE, IN_PROGRESS_WARNING)

# Crossing kinds, in the order a run's level rises through them (section 4), and the end of a breached run.
APPROACHING = "approaching"
COMMITMENT_BREACHED = "commitment_breached"
TOLERANCE_BREACHED = "tolerance_breached"
RESOLVED = "resolved"
CROSSING_KINDS = (APPROACHING, COMMITMENT_BREACHED, TOLERANCE_BREACHED)
BREACH_KINDS = (COMMITMENT_BREACHED, TOLERANCE_BREACHED)

# Event types (section 2).
NODE_STARTED = "node_started"
NODE_COMPLETED = "node_completed"
NODE_CANCELLED = "node_cancelled"
NODE_PAUSED = "node_paused"
NODE_RESUMED = "node_resumed"
ORDER_COMPLETED = "order_completed"
ORDER_CANCELLED = "order_cancelled"
STATUS_CHANGED = "status_changed"  # a source's status, mapped to runs by the policy's `statuses:` (section 12)
EVENT_TYPES = (
    NODE_STARTED, NODE_COMPLETED, NODE_CANCELLED, NODE_PAUSED, NODE_RESUMED, ORDER_COMPLETED, ORDER_CANCELLED,
    STATUS_CHANGED,
)
NODE_TYPES = frozenset(t for t in EVENT_TYPES if t.startswith("node_"))

# The reasons an event cannot be applied, in the order they are checked (section 2).
MALFORMED = "malformed"
DUPLICATE_EVENT = "duplicate_event"
UNKNOWN_PROCESS = "unknown_process"
UNKNOWN_NODE = "unknown_node"
OUT_OF_ORDER = "out_of_order"
INVALID_TRANSITION = "invalid_transition"
# Not a rule of the contract: an event the monitor failed to apply through its own fault (an exception).
INTERNAL_ERROR = "internal_error"
REASONS = (MALFORMED, DUPLICATE_EVENT, UNKNOWN_PROCESS, UNKNOWN_NODE, OUT_OF_ORDER, INVALID_TRANSITION, INTERNAL_ERROR)

# Reserved names (section 3): the order-level run's node, and the segment of runs no policy segment names.
ORDER_NODE = "__order__"
DEFAULT_SEGMENT = "default"
