"""An order's runs as the query API shows them: the table's open runs judged at now, the board's run records,
the two merged; and the board's breach records cut to the warning fields."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

from ..core.engine import OrderState, Run
from ..core.records import WARNING_FIELDS, open_run_view
from ..core.vocabulary import CROSSING_KINDS, LEVELS

log = logging.getLogger("slamon.api")


def table_run(state: OrderState, run: Run, now: int) -> dict[str, Any]:
    """An open run of the table, judged at `now` (microseconds)."""
    return {**open_run_view(run, now), "source": "table"}


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def board_run(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A run record of the board (`{ns}:order:{id}` hash value) as the API shows it. An ended run carries its
    final state and elapsed; an open run known only from the board carries the level its announced crossings
    imply, and no elapsed or pause information (the board does not have them)."""
    ended_at = _text(rec.get("ended_at"))
    crossings = rec.get("crossings")  # Lua's cjson writes an empty list as {}
    level = rec.get("level")
    return {
        "node": str(rec.get("node")),
        "run": int(rec.get("run") or 0),
        "state": _text(rec.get("state")),
        "level": level if level in LEVELS else None,
        "segment": _text(rec.get("segment")),
        "owner": _text(rec.get("owner")),
        "policy_version": rec.get("policy_version") if isinstance(rec.get("policy_version"), int) else None,
        "attrs": rec.get("attrs") if isinstance(rec.get("attrs"), dict) else {},
        "started_at": _text(rec.get("started_at")),
        "ended_at": ended_at,
        "paused": False if ended_at is not None else None,
        "paused_at": None,
        "elapsed_s": _float(rec.get("elapsed_s")) if ended_at is not None else None,
        "commitment_s": _float(rec.get("commitment_s")),
        "tolerance_s": _float(rec.get("tolerance_s")),
        "crossings": [k for k in crossings if k in CROSSING_KINDS] if isinstance(crossings, list) else [],
        "source": "board",
    }


def decode_board(raw: Mapping[Any, Any]) -> list[dict[str, Any]]:
    """The run records of an order hash (HGETALL reply); unreadable entries are skipped (and logged)."""
    out = []
    for field, value in raw.items():
        try:
            rec = orjson.loads(value)
            if not isinstance(rec, dict) or "node" not in rec or "run" not in rec:
                raise ValueError("not a run record")
            out.append(rec)
        except (orjson.JSONDecodeError, ValueError):
            log.warning("skipping an unreadable run record on the board", extra={"field": str(field)})
    return out


def _run_order(run: Mapping[str, Any]) -> tuple[str, str, int]:
    return (run["started_at"] or "", run["node"], run["run"])


def merge_runs(open_runs: list[dict[str, Any]], board: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's open runs plus the board's ended runs, one per (node, run); the table wins."""
    by_key = {(r["node"], r["run"]): r for r in open_runs}
    for rec in board:
        run = board_run(rec)
        if run["ended_at"] is not None:
            by_key.setdefault((run["node"], run["run"]), run)
    return sorted(by_key.values(), key=_run_order)


def warning_view(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A breach record of the board as the API returns it: the fields of a warning record (CONTRACTS.md
    section 4); the board may store more."""
    return {f: rec.get(f) for f in WARNING_FIELDS if f in rec}
