"""Shared by the query API's tests: the OpenAPI document, a policy, orders run through the engine, and run
records as the board keeps them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from monitor.core.engine import Engine
from monitor.core.instants import format_instant, parse_instant

from ..helpers import Recorder, policies

ROOT = Path(__file__).resolve().parents[3]
OPENAPI = yaml.safe_load((ROOT / "deploy/api/openapi.yaml").read_text())
S = 1_000_000
T0 = parse_instant("2026-11-21T08:00:00Z")
POLICY = {"process": "p", "early_warning": 0.5,
          "order": {"commitment": "1d", "tolerance": "2d", "owner": "desk"},
          "nodes": {"n": {"commitment": "2h", "tolerance": "4h", "owner": "team-n"},
                    "m": {"commitment": "1h", "tolerance": "1h"}}}


def schema(name: str) -> jsonschema.Draft202012Validator:
    """A validator of `#/components/schemas/<name>`, resolving refs inside the OpenAPI document."""
    return jsonschema.Draft202012Validator({**OPENAPI, "$ref": f"#/components/schemas/{name}"})


def order_state(*events, policy=POLICY):
    engine = Engine(policies(policy))
    sink = Recorder()
    state = None
    for e in events:
        state, rejection = engine.apply(state, e, sink)
        assert rejection is None, rejection
    return engine, state, sink


def at(seconds: float) -> str:
    return format_instant(T0 + int(seconds * S))


def board_record(rec: dict[str, Any], crossings: list[str], ended: bool) -> dict[str, Any]:
    """A run record as the board keeps it (monitor/oncall/keys.py): the run fields of the last warning or
    outcome, level, state, crossings, ended_at."""
    run = {f: rec[f] for f in ("order_id", "process", "node", "run", "segment", "owner", "policy_version", "attrs",
                               "started_at", "commitment_s", "tolerance_s")}
    level = "warning" if "tolerance_breached" in crossings else "acceptable" if "commitment_breached" in crossings \
        else "normal"
    if ended:
        run.update(ended_at=rec["ended_at"], state=rec["state"], elapsed_s=rec["elapsed_s"],
                   level={"completed_acceptable": "acceptable", "completed_warning": "warning"}.get(rec["state"],
                                                                                                   "normal"))
    else:
        run.update(ended_at=None, state=f"in_progress_{level}", level=level)
    run["crossings"] = crossings
    return run
