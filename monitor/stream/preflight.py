"""What a worker does before it joins the group: create missing topics, check co-partitioning, publish the
policies of SLAMON_POLICIES if given."""

from __future__ import annotations

import logging

from ..catalogue import EVENTS, POLICIES, TICKS, load_catalogue
from ..catalogue.admin import apply_topics, partition_counts, policies_not_compacted
from ..clock import now_us
from ..core.policies import PolicySet, load_policy_dir
from ..settings import Settings
from .policyfeed import policy_messages, publish

log = logging.getLogger("slamon.worker")


class SetupError(Exception):
    """The cluster's topics cannot be used as they are (the message says why and what to do)."""


async def ensure_topics(settings: Settings) -> dict[str, str]:
    """Create the catalogue's missing topics (with their configuration: a topic the broker auto-creates would not
    have it) and check the existing ones; returns catalogue name -> topic name. Raises SetupError when
    sla.policies cannot keep policies."""
    specs = load_catalogue(settings.partitions, settings.replication, settings.topic_prefix)
    reports = await apply_topics(settings, specs)
    for r in reports:
        if not r.good:
            log.warning("topic differs from the catalogue", extra={"report": r.line()})
    names = {s.logical_name: s.name for s in specs}
    problem = policies_not_compacted(reports, names[POLICIES])
    if problem:
        raise SetupError(problem)
    return names


async def publish_policies(settings: Settings, policies: PolicySet) -> str:
    """Publish a validated policy set to sla.policies, creating the catalogue's topics first; returns the topic."""
    topic = (await ensure_topics(settings))[POLICIES]
    await publish(settings, topic, policy_messages(policies, now_us()))
    return topic


async def prepare(settings: Settings) -> int:
    """Returns the partition count of workflow.events. Raises SetupError, PolicyError, TopicsError."""
    names = await ensure_topics(settings)
    counts = await partition_counts(settings, [names[EVENTS], names[TICKS]])
    events, ticks = counts[names[EVENTS]], counts[names[TICKS]]
    if events != ticks:
        raise SetupError(
            f"{names[TICKS]} has {ticks} partitions but {names[EVENTS]} has {events}; they must be equal (a tick "
            f"for partition p is processed with the events of p). Recreate {names[TICKS]} with {events} partitions."
        )
    if settings.policies:
        policies, _ = load_policy_dir(settings.policies)
        await publish_policies(settings, policies)
        log.info("published policies", extra={"directory": settings.policies, "processes": sorted(policies.policies)})
    return events
