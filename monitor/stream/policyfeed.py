"""Policies at run time: the compacted topic `sla.policies`, read in full by every worker, then followed.

A message is keyed by process; its value carries the policy document and the calendars it uses (schema
`topics/schemas/sla-policy.schema.json`); a null value removes the process. A message that would make the set
invalid is rejected with file, field and problem, and the running set stays as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from .. import kafka
from ..core.instants import US, format_instant
from ..core.policies import PolicyError, PolicySet, build_policy_set
from ..settings import Settings

log = logging.getLogger("slamon.policies")


def policy_messages(policies: PolicySet, now: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of every policy of a validated set, as published to `sla.policies` at `now` (microseconds)."""
    published_at = format_instant(now - now % US)
    out = []
    for name, p in sorted(policies.policies.items()):
        calendars = {cal: policies.calendar_documents[cal] for cal in p.calendar_names}  # at every level
        value = {"process": name, "version": p.version, "source": p.source, "document": p.document,
                 "calendars": calendars, "published_at": published_at}
        out.append((name.encode(), orjson.dumps(value, default=str)))
    return out


class PolicyBook:
    """The documents currently in force, by process, and the validated set built from them."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.policies = PolicySet({}, {})

    def _build(self, documents: dict[str, dict[str, Any]]) -> PolicySet:
        calendars: dict[str, Any] = {}
        for d in documents.values():
            calendars.update(d.get("calendars") or {})
        pairs = [(d.get("source") or f"{name}.yaml", d.get("document")) for name, d in sorted(documents.items())]
        policy_set, _ = build_policy_set(pairs, {"calendars": calendars}, "calendars (from sla.policies)")
        return policy_set

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """Apply one message; True when the set changed. Rejects (and logs) a message that breaks the set."""
        # (log fields never use LogRecord's own attribute names, such as `process`: logging refuses them)
        process = (key or b"").decode("utf-8", "replace")
        documents = dict(self.documents)
        if value is None:
            if documents.pop(process, None) is None:
                return False
        else:
            try:
                doc = orjson.loads(value)
                if not isinstance(doc, dict) or not isinstance(doc.get("document"), dict):
                    raise ValueError("value has no `document` object")
            except (orjson.JSONDecodeError, ValueError) as exc:
                log.error("policy message rejected", extra={"policy": process, "problem": str(exc)})
                return False
            documents[process] = doc
        try:
            policies = self._build(documents)
        except PolicyError as exc:
            log.error("policy message rejected; the running policies stay as they were",
                      extra={"policy": process, "problems": [str(p) for p in exc.problems]})
            return False
        except Exception as exc:  # noqa: BLE001 - no message may stop the feed (it stays in the compacted topic)
            log.exception("policy message rejected (unusable); the running policies stay as they were",
                          extra={"policy": process, "problem": f"{type(exc).__name__}: {exc}"})
            return False
        self.documents, self.policies = documents, policies
        log.info("policies in force", extra={"processes": {n: p.version for n, p in policies.policies.items()}})
        return True


class PolicyFeed:
    """Reads `sla.policies` from the beginning (no consumer group), sets `ready` at its end, then follows."""

    def __init__(self, settings: Settings, topic: str, on_change: Callable[[PolicySet], None]):
        self.settings = settings
        self.topic = topic
        self.on_change = on_change
        self.book = PolicyBook()
        self.ready = asyncio.Event()

    async def run(self) -> None:
        from aiokafka import TopicPartition

        consumer = kafka.consumer(self.settings, client_id="slamon-policies", group_id=None,
                                  enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            partitions = await kafka.partitions_of(consumer, self.topic)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=1000)
                changed = False
                for msgs in batches.values():
                    for m in msgs:
                        changed |= self.book.apply(m.key, m.value)
                if changed:
                    self.on_change(self.book.policies)
                if not self.ready.is_set() and all([await consumer.position(tp) >= end[tp] for tp in tps]):
                    self.on_change(self.book.policies)
                    self.ready.set()
                    log.info("policies loaded", extra={"processes": sorted(self.book.policies.policies)})
        finally:
            await consumer.stop()


async def publish(settings: Settings, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = kafka.producer(settings, client_id="slamon-policies", acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()
