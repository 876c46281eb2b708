"""Applying the catalogue to a cluster: create missing topics with their configuration, compare existing ones.

`apply_topics(settings, specs)` changes nothing that exists and returns one `TopicReport` per topic; the worker,
`slamon topics apply` and `slamon policy apply` call it. `partition_counts` reads how many partitions topics have.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from .. import kafka
from ..settings import Settings
from .spec import TopicsError, TopicSpec

DEFAULT_TIMEOUT_S = 30.0

# Kafka error codes met when creating topics (see the Kafka protocol's error table).
_TOPIC_ALREADY_EXISTS = 36


class ClusterUnreachable(TopicsError):
    """The Kafka cluster could not be reached (bootstrap failed or timed out)."""


@dataclass
class Difference:
    setting: str  # `partitions`, `replication` or a config name
    wanted: str
    actual: str

    def __str__(self) -> str:
        return f"{self.setting}: wanted {self.wanted}, actual {self.actual}"


@dataclass
class TopicReport:
    topic: str
    status: str  # `created`, `ok`, `differs` or `failed`
    differences: list[Difference] = field(default_factory=list)
    detail: str = ""

    @property
    def good(self) -> bool:
        return self.status in ("created", "ok")

    def line(self) -> str:
        text = f"{self.topic}: {self.status}"
        if self.differences:
            text += ": " + "; ".join(str(d) for d in self.differences)
        if self.detail:
            text += f" ({self.detail})"
        return text


def _norm(setting: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if setting == "cleanup.policy":  # `compact,delete` == `delete, compact`
        return ",".join(sorted(p.strip() for p in value.split(",") if p.strip()))
    return value


def _compare(spec: TopicSpec, meta: dict[str, Any], configs: dict[str, str | None],
             wanted_partitions: int) -> list[Difference]:
    diffs = []
    partitions = meta.get("partitions") or []
    if len(partitions) != wanted_partitions:
        diffs.append(Difference("partitions", str(wanted_partitions), str(len(partitions))))
    factors = sorted({len(p["replicas"]) for p in partitions})
    if factors and factors != [spec.replication]:
        actual = "/".join(str(f) for f in factors)
        diffs.append(Difference("replication", str(spec.replication), actual))
    for key, wanted in spec.config.items():
        actual = configs.get(key)
        if _norm(key, actual) != _norm(key, wanted):
            diffs.append(Difference(key, wanted, "(not set)" if actual is None else actual))
    return diffs


async def _topic_metadata(admin: Any) -> dict[str, dict[str, Any]]:
    # Ask for all topics: a metadata request naming topics lets the broker auto-create them
    # (aiokafka sends allow_auto_topic_creation=True), which would create them with broker defaults.
    return {t["topic"]: t for t in await admin.describe_topics()}


async def _topic_configs(admin: Any, specs: list[TopicSpec]) -> dict[str, dict[str, Any]]:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    if not specs:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, s.name, dict.fromkeys(s.config)) for s in specs]
    result: dict[str, dict[str, Any]] = {}
    for response in await admin.describe_configs(resources):
        for res in response.to_object()["resources"]:
            if res["error_code"]:
                result[res["resource_name"]] = {"__error__": f"error {res['error_code']} {res['error_message']}"}
                continue
            result[res["resource_name"]] = {e["config_names"]: e["config_value"] for e in res["config_entries"]}
    return result


async def _wait_ready(admin: Any, names: list[str], deadline: float) -> list[str]:
    """Wait until every named topic has all its partitions with a leader; return those that did not."""
    pending = list(names)
    while pending:
        meta = await _topic_metadata(admin)
        pending = [
            n for n in pending
            if n not in meta or meta[n]["error_code"] or not meta[n]["partitions"]
            or any(p["leader"] < 0 for p in meta[n]["partitions"])
        ]
        if not pending or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)
    return pending


async def apply_topics(
    settings: Settings,
    specs: list[TopicSpec],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    client_id: str = "slamon-topics",
) -> list[TopicReport]:
    """Create the missing topics of `specs`, compare the existing ones; change nothing that exists.

    A topic with `copartition` is created with the partition count its partner actually has, and compared
    against it: co-partitioning matters more than the catalogue's number.
    Returns one report per spec, in order. Raises `ClusterUnreachable` when the cluster cannot be reached.
    """
    from aiokafka.admin import NewTopic
    from aiokafka.errors import KafkaError

    bootstrap = settings.kafka_bootstrap
    deadline = time.monotonic() + timeout_s
    admin = kafka.admin(settings, client_id=client_id, request_timeout_ms=int(timeout_s * 1000))
    try:
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
                await admin.start()
                meta = await _topic_metadata(admin)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise ClusterUnreachable(f"cannot reach Kafka at {bootstrap}: {exc or type(exc).__name__}") from exc

        def wanted_partitions(spec: TopicSpec) -> tuple[int, str]:
            partner = meta.get(spec.copartition) if spec.copartition else None
            if partner and partner.get("partitions"):
                return len(partner["partitions"]), f"co-partitioned with {spec.copartition}"
            return spec.partitions, ""

        reports: dict[str, TopicReport] = {}
        missing = [s for s in specs if s.name not in meta]
        if missing:
            new = []
            for s in missing:
                n, _ = wanted_partitions(s)
                new.append(NewTopic(s.name, n, s.replication, topic_configs=dict(s.config)))
            response = await admin.create_topics(new, timeout_ms=int(max(deadline - time.monotonic(), 1) * 1000))
            raced = []
            for err in response.to_object()["topic_errors"]:
                name, code = err["topic"], err["error_code"]
                if code == 0:
                    n, why = wanted_partitions(next(s for s in missing if s.name == name))
                    detail = f"{n} partition{'s' if n != 1 else ''}" + (f", {why}" if why else "")
                    reports[name] = TopicReport(name, "created", detail=detail)
                elif code == _TOPIC_ALREADY_EXISTS:  # created meanwhile by someone else: compare below
                    raced.append(name)
                else:
                    message = err.get("error_message") or ""
                    reports[name] = TopicReport(name, "failed", detail=f"error {code} {message}".strip())
            not_ready = await _wait_ready(admin, [n for n, r in reports.items() if r.status == "created"]
                                          + raced, deadline)
            for name in not_ready:
                if name in reports:
                    reports[name].detail += "; not ready yet (partitions without leader)"
            meta = await _topic_metadata(admin)

        existing = [s for s in specs if s.name not in reports]
        configs = await _topic_configs(admin, [s for s in existing if s.name in meta])
        for spec in existing:
            if spec.name not in meta:
                reports[spec.name] = TopicReport(spec.name, "failed", detail="not created and not found")
                continue
            if meta[spec.name]["error_code"]:
                code = meta[spec.name]["error_code"]
                reports[spec.name] = TopicReport(spec.name, "failed", detail=f"metadata error {code}")
                continue
            topic_configs = configs.get(spec.name, {})
            if "__error__" in topic_configs:
                reports[spec.name] = TopicReport(spec.name, "failed", detail=topic_configs["__error__"])
                continue
            n, why = wanted_partitions(spec)
            diffs = _compare(spec, meta[spec.name], topic_configs, n)
            reports[spec.name] = TopicReport(spec.name, "differs" if diffs else "ok", diffs, why)
        return [reports[s.name] for s in specs]
    except KafkaError as exc:
        raise TopicsError(f"Kafka at {bootstrap} failed: {exc}") from exc
    finally:
        await admin.close()


async def partition_counts(settings: Settings, names: list[str], client_id: str = "slamon-topics") -> dict[str, int]:
    """How many partitions each named topic has (waiting for topics just created to show in the metadata)."""
    consumer = kafka.consumer(settings, client_id=client_id, group_id=None)
    await consumer.start()
    try:
        return {name: len(await kafka.partitions_of(consumer, name)) for name in names}
    finally:
        await consumer.stop()


def policies_not_compacted(reports: list[TopicReport], policies_topic: str) -> str | None:
    """Why sla.policies cannot be used (None when it can): policies live in a compacted topic with no retention;
    a topic that deletes old records (e.g. auto-created by the broker) would lose them after its retention."""
    for report in reports:
        if report.topic != policies_topic:
            continue
        wrong = [d for d in report.differences if d.setting in ("cleanup.policy", "retention.ms")]
        if wrong:
            return (f"{policies_topic} is not configured as the catalogue says ({'; '.join(map(str, wrong))}), so "
                    f"published policies would be deleted after its retention. Recreate it with `slamon topics "
                    f"apply` (after deleting it), or change its configuration: kafka-configs.sh --alter "
                    f"--entity-type topics --entity-name {policies_topic} --add-config "
                    f"cleanup.policy=compact,retention.ms=-1")
    return None
