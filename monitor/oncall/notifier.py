"""`slamon notifier`: breaches from `sla.warnings` to Alertmanager's v2 API.

- `commitment_breached` -> alert `SLACommitmentBreached` (severity warning), `tolerance_breached` ->
  `SLAToleranceBreached` (severity critical); labels process, node, run, owner, segment, order_id; annotations
  with a readable summary, the limits, the elapsed time and the start; `startsAt` = crossed_at.
- An active alert carries an `endsAt` lease (`--lease`, default 5 min) and is re-sent every `--resend`
  seconds (default 60) while the run is open, so Alertmanager never times it out on its own; the notifier keeps
  its active alerts in Redis (`{ns}:alerts:sent`), so a restart continues the re-sends.
- `resolved` ends both alerts of the run with `endsAt` = the end instant, re-sent for `--keep-resolved`
  seconds (default 15 min), as Prometheus does.
- Offsets are committed only after Alertmanager accepted the alerts; while it is down the notifier retries
  with back-off, and delivers everything when it returns.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from . import keys

log = logging.getLogger("slamon.notifier")

ALERTNAMES = {"commitment_breached": ("SLACommitmentBreached", "warning"),
              "tolerance_breached": ("SLAToleranceBreached", "critical")}


def _fmt(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return "".join(f"{v}{u}" for v, u in ((d, "d"), (h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _utc(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_for(w: dict[str, Any], ends_at: str) -> dict[str, Any]:
    """The Alertmanager alert of a breach warning."""
    name, severity = ALERTNAMES[w["kind"]]
    limit = w["commitment_s"] if w["kind"] == "commitment_breached" else w["tolerance_s"]
    which = "commitment" if w["kind"] == "commitment_breached" else "tolerance"
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
    pass


def post_alerts(base_url: str, alerts: list[dict[str, Any]], timeout: float = 5.0) -> None:
    if not alerts:
        return
    req = urllib.request.Request(f"{base_url.rstrip('/')}/api/v2/alerts", data=orjson.dumps(alerts), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            if r.status // 100 != 2:
                raise AlertmanagerDown(f"HTTP {r.status}")
    except (urllib.error.URLError, OSError) as exc:
        raise AlertmanagerDown(str(exc)) from exc


class Notifier:
    def __init__(self, redis: Any, ns: str, alertmanager_url: str, lease: float, keep_resolved: float):
        self.redis, self.ns, self.url = redis, ns, alertmanager_url
        self.lease, self.keep_resolved = lease, keep_resolved

    def _ends(self) -> str:
        return _utc(datetime.now(UTC) + timedelta(seconds=self.lease))

    async def _post(self, alerts: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(post_alerts, self.url, alerts)

    async def handle(self, warnings: list[dict[str, Any]]) -> None:
        """Send the alerts of a batch of warnings and record them; raises AlertmanagerDown."""
        active: dict[str, bytes] = {}
        ended: list[dict[str, Any]] = []
        alerts = []
        for w in warnings:
            if w["kind"] in ALERTNAMES:
                a = alert_for(w, self._ends())
                alerts.append(a)
                active[w["warning_id"]] = orjson.dumps(a)
            elif w["kind"] == "resolved":
                run = keys.run_prefix(w["warning_id"])
                for kind in ALERTNAMES:
                    wid = f"{run}:{kind}"
                    sent = active.pop(wid, None) or await self.redis.hget(keys.alerts_sent(self.ns), wid)
                    if sent:
                        a = orjson.loads(sent)
                        a["endsAt"] = w["crossed_at"]
                        alerts.append(a)
                        ended.append(a)
        await self._post(alerts)
        pipe = self.redis.pipeline(transaction=False)
        if active:
            pipe.hset(keys.alerts_sent(self.ns), mapping=active)
        until = time.time() + self.keep_resolved
        for a in ended:
            wid = a["annotations"]["warning_id"]
            pipe.hdel(keys.alerts_sent(self.ns), wid)
            pipe.zadd(f"{keys.alerts_sent(self.ns)}:resolved", {orjson.dumps(a): until})
        await pipe.execute()

    async def resend(self) -> int:
        """Re-send every active alert with a fresh lease, and recent resolutions; returns alerts sent."""
        sent = await self.redis.hgetall(keys.alerts_sent(self.ns))
        alerts = []
        for raw in sent.values():
            a = orjson.loads(raw)
            a["endsAt"] = self._ends()
            alerts.append(a)
        resolved_key = f"{keys.alerts_sent(self.ns)}:resolved"
        await self.redis.zremrangebyscore(resolved_key, 0, time.time())
        alerts += [orjson.loads(raw) for raw in await self.redis.zrange(resolved_key, 0, -1)]
        await self._post(alerts)
        return len(alerts)


async def run_notifier(bootstrap: str, redis_url: str, alertmanager_url: str, app_id: str, prefix: str,
                       lease: float = 300, resend_every: float = 60, keep_resolved: float = 900,
                       stop: asyncio.Event | None = None) -> None:
    import redis.asyncio as aioredis
    from aiokafka import AIOKafkaConsumer
    from redis.exceptions import RedisError

    r = aioredis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    notifier = Notifier(r, keys.namespace(app_id), alertmanager_url, lease, keep_resolved)
    consumer = AIOKafkaConsumer(f"{prefix}sla.warnings", bootstrap_servers=bootstrap, group_id=f"{app_id}-notifier",
                                enable_auto_commit=False, auto_offset_reset="earliest", client_id=f"{app_id}-notifier")
    await consumer.start()
    stop = stop or asyncio.Event()
    log.info("notifier started", extra={"alertmanager": alertmanager_url, "lease_s": lease, "resend_s": resend_every})
    next_resend = time.monotonic() + resend_every
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            warnings = [orjson.loads(m.value) for msgs in batches.values() for m in msgs]
            backoff = 0.5
            while warnings:
                try:
                    await notifier.handle(warnings)
                    await consumer.commit()
                    break
                except (AlertmanagerDown, RedisError, OSError) as exc:
                    log.warning("alerts not delivered; retrying", extra={"error": str(exc), "retry_in_s": backoff})
                    if stop.is_set():
                        return
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 15.0)
            if time.monotonic() >= next_resend:
                try:
                    n = await notifier.resend()
                    next_resend = time.monotonic() + resend_every
                    log.debug("re-sent alerts", extra={"alerts": n})
                except (AlertmanagerDown, RedisError, OSError) as exc:
                    log.warning("re-sending alerts failed; will retry", extra={"error": str(exc)})
                    next_resend = time.monotonic() + min(resend_every, 5)
    finally:
        await consumer.stop()
        await r.aclose()


def register(sub: Any) -> None:
    from ..settings import settings_help

    p = sub.add_parser(
        "notifier",
        help="send breaches to Alertmanager",
        description="Consume sla.warnings (consumer group <SLAMON_APP_ID>-notifier) and post commitment and "
        "tolerance breaches to Alertmanager's v2 API at SLAMON_ALERTMANAGER_URL, re-sending active alerts before "
        "their lease expires and ending them when the run ends.",
        epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--lease", type=float, default=300, help="seconds an alert stays active without a re-send (300)")
    p.add_argument("--resend", type=float, default=60, help="seconds between re-sends of active alerts (60)")
    p.add_argument("--keep-resolved", type=float, default=900, help="seconds resolutions are re-sent (900)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..settings import settings_for
    from .board import _serve

    s = settings_for("slamon notifier")
    if s is None:
        return 2
    if not s.alertmanager_url:
        print("slamon notifier: set SLAMON_ALERTMANAGER_URL (e.g. http://127.0.0.1:9093)", file=sys.stderr)
        return 2
    if args.resend >= args.lease:
        print("slamon notifier: --resend must be shorter than --lease", file=sys.stderr)
        return 2
    return _serve(lambda stop: run_notifier(s.kafka_bootstrap, s.redis_url, s.alertmanager_url, s.app_id,
                                            s.topic_prefix, args.lease, args.resend, args.keep_resolved, stop))
