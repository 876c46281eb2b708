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
- A record that is not a warning of the contract (`checks.py`), or whose alerts Alertmanager refuses as invalid
  (HTTP 400), is skipped: logged, counted, and committed with its batch.
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
from ..settings import Settings, redact_url
from . import keys
from .alerts import ALERTNAMES, AlertmanagerDown, AlertsRejected, alert_for, post_alerts
from .checks import check_warning
from .consume import Backoff, Batch, Periodic, Refused, consume
from .service import START_TIMEOUT, Service, check_connections, stop_consumer

log = logging.getLogger("slamon.notifier")


class Notifier:
    def __init__(self, redis: Any, ns: str, alertmanager_url: str, lease: float, keep_resolved: float):
        self.redis, self.ns, self.url = redis, ns, alertmanager_url
        self.lease, self.keep_resolved = lease, keep_resolved

    def _ends(self) -> str:
        return format_instant(time.time_ns() // 1000 + round(self.lease * US))

    async def _post(self, alerts: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(post_alerts, self.url, alerts)

    async def _post_groups(self, groups: list[list[dict[str, Any]]]) -> list[tuple[int, str]]:
        """Post the alerts of all groups at once; when Alertmanager refuses them as invalid, each group alone.
        Returns (index, error) of the groups it refused; raises AlertmanagerDown."""
        try:
            await self._post([a for g in groups for a in g])
            return []
        except AlertsRejected as exc:
            if len(groups) == 1:
                return [(0, str(exc))]
        refused = []
        for i, group in enumerate(groups):
            try:
                await self._post(group)
            except AlertsRejected as exc:
                refused.append((i, str(exc)))
        return refused

    async def handle(self, warnings: list[dict[str, Any]]) -> list[tuple[int, str]]:
        """Send the alerts of a batch of (checked) warnings and record them; returns (index, error) of the
        warnings whose alerts Alertmanager refused (nothing is recorded for them); raises AlertmanagerDown."""
        active: dict[str, bytes] = {}
        groups: list[list[dict[str, Any]]] = []  # the alerts of each warning
        effects: list[tuple[dict[str, bytes], list[dict[str, Any]]]] = []  # (alerts opened, alerts ended)
        for w in warnings:
            opened: dict[str, bytes] = {}
            ended: list[dict[str, Any]] = []
            if w["kind"] in ALERTNAMES:
                a = alert_for(w, self._ends())
                opened[w["warning_id"]] = active[w["warning_id"]] = orjson.dumps(a)
                groups.append([a])
            elif w["kind"] == RESOLVED:
                run = keys.run_prefix(w["warning_id"])
                for kind in ALERTNAMES:
                    wid = f"{run}:{kind}"
                    sent = active.pop(wid, None) or await self.redis.hget(keys.alerts_sent(self.ns), wid)
                    if sent:
                        a = orjson.loads(sent)
                        a["endsAt"] = w["crossed_at"]
                        ended.append(a)
                groups.append(ended)
            else:
                groups.append([])
            effects.append((opened, ended))
        refused = await self._post_groups(groups)
        skip = {i for i, _ in refused}
        until = time.time() + self.keep_resolved
        async with self.redis.pipeline(transaction=False) as pipe:
            for i, (opened, ended) in enumerate(effects):
                if i in skip:
                    continue
                if opened:
                    pipe.hset(keys.alerts_sent(self.ns), mapping=opened)
                for a in ended:
                    pipe.hdel(keys.alerts_sent(self.ns), a["annotations"]["warning_id"])
                    pipe.zadd(keys.alerts_resolved(self.ns), {orjson.dumps(a): until})
            await pipe.execute()
        return refused

    async def resend(self) -> int:
        """Re-send every active alert with a fresh lease, and recent resolutions; returns alerts sent. An alert
        Alertmanager refuses is dropped (logged), so it cannot hold the others back."""
        sent_key, resolved_key = keys.alerts_sent(self.ns), keys.alerts_resolved(self.ns)
        alerts, origins = [], []  # origin: (key, hash field or set member) the alert is kept under
        for wid, raw in (await self.redis.hgetall(sent_key)).items():
            a = orjson.loads(raw)
            a["endsAt"] = self._ends()
            alerts.append(a)
            origins.append((sent_key, wid))
        await self.redis.zremrangebyscore(resolved_key, 0, time.time())
        for raw in await self.redis.zrange(resolved_key, 0, -1):
            alerts.append(orjson.loads(raw))
            origins.append((resolved_key, raw))
        refused = await self._post_groups([[a] for a in alerts])
        if refused:
            async with self.redis.pipeline(transaction=False) as pipe:
                for i, error in refused:
                    log.warning("Alertmanager refused a kept alert; dropping it", extra={
                        "warning_id": alerts[i].get("annotations", {}).get("warning_id"), "error": error})
                    key, member = origins[i]
                    if key == sent_key:
                        pipe.hdel(key, member)
                    else:
                        pipe.zrem(key, member)
                await pipe.execute()
        return len(alerts) - len(refused)


async def run_notifier(settings: Settings, lease: float = 300, resend_every: float = 60, keep_resolved: float = 900,
                       stop: asyncio.Event | None = None, start_timeout: float = START_TIMEOUT) -> None:
    """Deliver the breaches of the warnings topic to `settings.alertmanager_url` until `stop` is set (consumer
    group `<app_id>-notifier`), re-sending active alerts every `resend_every` seconds, serving /metrics and
    /healthz."""
    from aiokafka.errors import KafkaError
    from redis.exceptions import RedisError

    transient = (AlertmanagerDown, RedisError, OSError)
    stop = stop or asyncio.Event()
    service = Service("notifier", log)
    r = redis_client.client(settings, timeout=5)
    notifier = Notifier(r, keys.namespace(settings.app_id), settings.alertmanager_url, lease, keep_resolved)

    async def resend() -> float:
        try:
            n = await notifier.resend()
        except transient as exc:
            log.warning("re-sending alerts failed; will retry", extra={"error": str(exc)})
            return min(resend_every, 5)
        log.debug("re-sent alerts", extra={"alerts": n})
        return resend_every

    async def handle(batch: Batch) -> Refused:
        return [(batch[i], error) for i, error in await notifier.handle([rec.value for rec in batch])]

    try:
        await check_connections(settings, log)
        async with service.web(settings.web_host, settings.web_port):
            consumer = await service.start_consumer(lambda: kafka.consumer(
                settings, topic_names(settings.topic_prefix)[WARNINGS], client_id=f"{settings.app_id}-notifier",
                group_id=f"{settings.app_id}-notifier", enable_auto_commit=False, auto_offset_reset="earliest"),
                start_timeout, stop, check=lambda: kafka.check_access(settings))
            if consumer is None:
                return
            log.info("notifier started", extra={"alertmanager": redact_url(settings.alertmanager_url), "lease_s": lease,
                                                "resend_s": resend_every})
            try:
                await consume(consumer, handle, stop, check=lambda topic, w: check_warning(w),
                              watch=service.watch, max_records=500, backoff=Backoff(0.5, 15.0), transient=transient,
                              commit_errors=(KafkaError,), log=log, retry_message="alerts not delivered; retrying",
                              periodic=Periodic(resend_every, resend))
            finally:
                await stop_consumer(consumer)
    finally:
        await r.aclose()
