"""What a worker does before it joins the group: create missing topics, check co-partitioning, publish the
policies of SLAMON_POLICIES if given."""

from __future__ import annotations

import logging

from ..catalogue import EVENTS, POLICIES, TICKS, load_catalogue
from ..catalogue.admin import apply_topics, partition_counts
from ..clock import now_us
from ..core.policies import load_policy_dir
from ..settings import Settings
from .policyfeed import policy_messages, publish

log = logging.getLogger("slamon.worker")


class NotCopartitioned(Exception):
    """sla.ticks and workflow.events have different partition counts."""


async def prepare(settings: Settings) -> int:
    """Returns the partition count of workflow.events. Raises NotCopartitioned, PolicyError, TopicsError."""
    specs = load_catalogue(settings.partitions, settings.replication, settings.topic_prefix)
    for r in await apply_topics(settings, specs):
        if not r.good:
            log.warning("topic differs from the catalogue", extra={"report": r.line()})
    names = {s.logical_name: s.name for s in specs}
    counts = await partition_counts(settings, [names[EVENTS], names[TICKS]])
    events, ticks = counts[names[EVENTS]], counts[names[TICKS]]
    if events != ticks:
        raise NotCopartitioned(
            f"{names[TICKS]} has {ticks} partitions but {names[EVENTS]} has {events}; they must be equal (a tick "
            f"for partition p is processed with the events of p). Recreate {names[TICKS]} with {events} partitions."
        )
    if settings.policies:
        policies, _ = load_policy_dir(settings.policies)
        await publish(settings, names[POLICIES], policy_messages(policies, now_us()))
        log.info("published policies", extra={"directory": settings.policies, "processes": sorted(policies.policies)})
    return events
