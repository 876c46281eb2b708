"""The Alertmanager side of the notifier: the alert of a breach warning, and posting alerts to the v2 API."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson

from ..core.durations import format_duration
from ..core.instants import US
from ..core.vocabulary import COMMITMENT_BREACHED, TOLERANCE_BREACHED

# breach kind -> (alertname, severity)
ALERTNAMES = {COMMITMENT_BREACHED: ("SLACommitmentBreached", "warning"),
              TOLERANCE_BREACHED: ("SLAToleranceBreached", "critical")}


def _fmt(seconds: float) -> str:
    """Whole seconds as compact text (`1d2h`, `45s`, `0s`)."""
    return format_duration(int(seconds) * US)


def alert_for(w: dict[str, Any], ends_at: str) -> dict[str, Any]:
    """The Alertmanager alert of a breach warning."""
    name, severity = ALERTNAMES[w["kind"]]
    limit = w["commitment_s"] if w["kind"] == COMMITMENT_BREACHED else w["tolerance_s"]
    which = "commitment" if w["kind"] == COMMITMENT_BREACHED else "tolerance"
    return {
        "labels": {"alertname": name, "severity": severity, "process": w["process"], "node": w["node"],
                   "run": str(w["run"]), "owner": w.get("owner") or "none", "segment": w["segment"],
                   "order_id": w["order_id"]},
        "annotations": {
            "summary": f"{w['process']}/{w['node']} of order {w['order_id']} passed its {which} of {_fmt(limit)}",
            "commitment": _fmt(w["commitment_s"]), "tolerance": _fmt(w["tolerance_s"]),
            "elapsed_at_crossing": _fmt(w["elapsed_s"]), "started_at": w["started_at"],
            "crossed_at": w["crossed_at"], "warning_id": w["warning_id"],
            "policy_version": str(w["policy_version"]),
        },
        "startsAt": w["crossed_at"],
        "endsAt": ends_at,
    }


class AlertmanagerDown(Exception):
    """Alertmanager did not take the alerts for a reason that passes (unreachable, 5xx, 429...): send again."""


class AlertsRejected(Exception):
    """Alertmanager refused the alerts as invalid (HTTP 400 or 422): sending them again cannot help."""


def post_alerts(base_url: str, alerts: list[dict[str, Any]], timeout: float = 5.0) -> None:
    """POST alerts to the v2 API; raises AlertsRejected or AlertmanagerDown."""
    if not alerts:
        return
    req = urllib.request.Request(f"{base_url.rstrip('/')}/api/v2/alerts", data=orjson.dumps(alerts), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            if r.status // 100 != 2:
                raise AlertmanagerDown(f"HTTP {r.status}")
    except urllib.error.HTTPError as exc:
        try:
            said = exc.read(300).decode("utf-8", "replace").strip()
        except OSError:
            said = ""
        error = f"HTTP {exc.code}: {said or exc.reason}"
        if exc.code in (400, 422):
            raise AlertsRejected(error) from None
        raise AlertmanagerDown(error) from None
    except (urllib.error.URLError, OSError) as exc:
        raise AlertmanagerDown(str(exc)) from exc
