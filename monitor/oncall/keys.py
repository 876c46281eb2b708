"""The Redis layout of the breach board and the notifier, shared by the board (writer), the notifier and the query
API (reader).

All keys live under a namespace `slamon:<app id>` so several deployments can share one Redis.

| key | type | content |
|---|---|---|
| `{ns}:breaches` | sorted set | open breaches: member = warning_id (kind commitment_breached or tolerance_breached), score = crossed_at (epoch seconds) |
| `{ns}:breaches:owner:{owner}` | sorted set | the same, only runs owned by `owner` (`-` when the run has no owner) |
| `{ns}:breaches:process:{process}` | sorted set | the same, only runs of `process` |
| `{ns}:breach:{warning_id}` | string | the warning record (JSON, as on sla.warnings) of an open breach |
| `{ns}:order:{order_id}` | hash | field `{node}:{run}` -> run record (JSON): the run fields of the last warning or outcome, `level` (normal, acceptable, warning), `state` (one of the seven), `crossings` (kinds announced), `ended_at` (or null); expires `closed_retention` seconds after its last run ended, unless a run of it is still open |
| `{ns}:workers` | hash | events partition -> base URL of the worker that owns it (written by workers at assignment) |
| `{ns}:alerts:sent` | hash | warning_id -> the alert (JSON) last sent to Alertmanager (the notifier's record of active alerts) |
| `{ns}:alerts:sent:resolved` | sorted set | member = an ended alert (JSON, `endsAt` = the run's end), score = epoch seconds until which the notifier re-sends it |

A breach stays open until the run ends (`resolved` warning, or an outcome for the run).
"""

from __future__ import annotations

__all__ = ["alerts_resolved", "alerts_sent", "breach", "breach_prefix", "breaches",
           "breaches_by_owner", "breaches_by_process", "namespace", "order", "owner_index_prefix",
           "process_index_prefix", "run_field", "run_prefix", "workers"]


def namespace(app_id: str) -> str:
    return f"slamon:{app_id}"


def breaches(ns: str) -> str:
    return f"{ns}:breaches"


def owner_index_prefix(ns: str) -> str:
    """`breaches_by_owner(ns, owner)` is this prefix followed by the owner (or `-`)."""
    return f"{ns}:breaches:owner:"


def breaches_by_owner(ns: str, owner: str | None) -> str:
    return owner_index_prefix(ns) + (owner or "-")


def process_index_prefix(ns: str) -> str:
    """`breaches_by_process(ns, process)` is this prefix followed by the process."""
    return f"{ns}:breaches:process:"


def breaches_by_process(ns: str, process: str) -> str:
    return process_index_prefix(ns) + process


def breach_prefix(ns: str) -> str:
    """`breach(ns, warning_id)` is this prefix followed by the warning_id."""
    return f"{ns}:breach:"


def breach(ns: str, warning_id: str) -> str:
    return breach_prefix(ns) + warning_id


def order(ns: str, order_id: str) -> str:
    return f"{ns}:order:{order_id}"


def run_field(node: str, run: int) -> str:
    return f"{node}:{run}"


def workers(ns: str) -> str:
    return f"{ns}:workers"


def alerts_sent(ns: str) -> str:
    return f"{ns}:alerts:sent"


def alerts_resolved(ns: str) -> str:
    return f"{ns}:alerts:sent:resolved"


def run_prefix(warning_id: str) -> str:
    """`order:node:run` of a warning_id `order:node:run:kind` (order ids may contain colons)."""
    return warning_id.rsplit(":", 1)[0]
