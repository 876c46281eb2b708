"""`slamon notifier`: breaches from `sla.warnings` to Alertmanager's v2 API.

- `commitment_breached` -> alert `SLACommitmentBreached` (severity warning), `tolerance_breached` ->
  `SLAToleranceBreached` (severity critical); labels process, node, run, owner, segment, order_id; annotations
  with a readable summary, the limits, the elapsed time and the start; `startsAt` = crossed_at (`alerts.py`).
- An active alert carries an `endsAt` lease (`--lease`, default 5 min) and is re-sent every `--resend`
  seconds (default 60) while the run is open, so Alertmanager never times it out on its own; the notifier keeps
  its active alerts in Redis (`{ns}:alerts:sent`), so a restart continues the re-sends.
- `resolved` ends both alerts of the run with `endsAt` = the end instant, re-sent for `--keep-resolved`
  seconds (default 15 min), as Prometheus does (`{ns}:alerts:sent:resolved`).
- Offsets are committed only after Alertmanager accepted the alerts; while it is down the notifier retries
  with back-off, and delivers everything when it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from .. import kafka, redis_client
from ..catalogue import WARNINGS, topic_names
from ..core.instants import US, format_instant
from ..core.vocabulary import RESOLVED
from ..settings import Settings
from . import keys
from .alerts import ALERTNAMES, AlertmanagerDown, alert_for, post_alerts
from .consume import Backoff, Periodic, consume

log = logging.getLogger("slamon.notifier")


class Notifier:
    def __init__(self, redis: Any, ns: str, alertmanager_url: str, lease: float, keep_resolved: float):
        self.redis, self.ns, self.url = redis, ns, alertmanager_url
        self.lease, self.keep_resolved = lease, keep_resolved

    def _ends(self) -> str:
        return format_instant(time.time_ns() // 1000 + round(self.lease * US))

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
            elif w["kind"] == RESOLVED:
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
            pipe.zadd(keys.alerts_resolved(self.ns), {orjson.dumps(a): until})
        await pipe.execute()

    async def resend(self) -> int:
        """Re-send every active alert with a fresh lease, and recent resolutions; returns alerts sent."""
        sent = await self.redis.hgetall(keys.alerts_sent(self.ns))
        alerts = []
        for raw in sent.values():
            a = orjson.loads(raw)
            a["endsAt"] = self._ends()
            alerts.append(a)
        resolved_key = keys.alerts_resolved(self.ns)
        await self.redis.zremrangebyscore(resolved_key, 0, time.time())
        alerts += [orjson.loads(raw) for raw in await self.redis.zrange(resolved_key, 0, -1)]
        await self._post(alerts)
        return len(alerts)


async def run_notifier(settings: Settings, lease: float = 300, resend_every: float = 60, keep_resolved: float = 900,
                       stop: asyncio.Event | None = None) -> None:
    """Deliver the breaches of the warnings topic to `settings.alertmanager_url` until `stop` is set (consumer
    group `<app_id>-notifier`), re-sending active alerts every `resend_every` seconds."""
    from redis.exceptions import RedisError

    transient = (AlertmanagerDown, RedisError, OSError)
    r = redis_client.connect(settings.redis_url, timeout=5)
    notifier = Notifier(r, keys.namespace(settings.app_id), settings.alertmanager_url, lease, keep_resolved)

    async def resend() -> float:
        try:
            n = await notifier.resend()
        except transient as exc:
            log.warning("re-sending alerts failed; will retry", extra={"error": str(exc)})
            return min(resend_every, 5)
        log.debug("re-sent alerts", extra={"alerts": n})
        return resend_every

    consumer = kafka.consumer(settings, topic_names(settings.topic_prefix)[WARNINGS],
                              client_id=f"{settings.app_id}-notifier", group_id=f"{settings.app_id}-notifier",
                              enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    log.info("notifier started", extra={"alertmanager": settings.alertmanager_url, "lease_s": lease,
                                        "resend_s": resend_every})
    try:
        await consume(consumer, lambda batch: notifier.handle([w for _, w in batch]), stop or asyncio.Event(),
                      max_records=500, backoff=Backoff(0.5, 15.0), transient=transient, log=log,
                      retry_message="alerts not delivered; retrying", periodic=Periodic(resend_every, resend))
    finally:
        await consumer.stop()
        await r.aclose()
