"""Prometheus metrics of CONTRACTS.md section 6, on a registry of their own.

Labels take values from policies and fixed vocabularies only: the segment label is the run's segment when the
policy names it, else `default`. Every label set the policies imply is created at zero when policies load, so
the first increment of a series is not lost to `increase()`.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from .. import observe
from ..core.policies import PolicySet
from ..core.vocabulary import (
    CROSSING_KINDS,
    DEFAULT_SEGMENT,
    EVENT_TYPES,
    LEVELS,
    ORDER_NODE,
    OUTCOME_STATES,
    REASONS,
    STATUS_CHANGED,
)

RATIO_BUCKETS = (0.25, 0.5, 0.75, 0.9, 1, 1.25, 1.5, 2, 3, 5)
DURATION_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 432000, 864000, 2592000)
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300)

LabelKey = tuple[str, str, str, str]  # process, node, segment label, level


class InProgressCollector:
    """`sla_runs_in_progress`: open runs by announced level, summed over the partitions this worker owns now."""

    def __init__(self) -> None:
        self.by_partition: dict[int, Tally[LabelKey]] = {}
        self.owned: set[int] = set()
        self.known: set[tuple[str, str, str]] = set()

    def describe(self) -> list:
        return [GaugeMetricFamily("sla_runs_in_progress", "Open runs on this worker's partitions, by level",
                                  labels=["process", "node", "segment", "level"])]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        total: Tally[LabelKey] = Tally()
        for p in self.owned:
            total.update(self.by_partition.get(p, {}))
        g = GaugeMetricFamily("sla_runs_in_progress", "Open runs on this worker's partitions, by level",
                              labels=["process", "node", "segment", "level"])
        keys = {(*k, lvl) for k in self.known for lvl in LEVELS} | {k for k, v in total.items() if v}
        for key in sorted(keys):
            g.add_metric(list(key), total.get(key, 0))
        yield g

    def assign(self, owned: set[int]) -> None:
        """The partitions this worker owns now (only theirs are reported); tallies of others are dropped."""
        self.owned = set(owned)
        for p in set(self.by_partition) - self.owned:
            del self.by_partition[p]

    def reset(self, partition: int) -> None:
        """Start counting a partition again from zero (after recovery, before its runs are added back)."""
        self.by_partition[partition] = Tally()

    def drop(self, partition: int) -> None:
        self.by_partition.pop(partition, None)
        self.owned.discard(partition)

    def add(self, partition: int, key: LabelKey, delta: int) -> None:
        tally = self.by_partition.get(partition)
        if tally is None:
            tally = self.by_partition[partition] = Tally()
        tally[key] += delta


class PendingMoves:
    """Metric changes listed as they come and applied at once by `flush`: prometheus_client takes a lock for every
    increment and observation, and the worker makes several per event (a tenth of a draining worker's time).
    Counter children are listed once per increment (one `inc(n)` each at the flush), observations listed, gauge
    moves listed and summed at the flush: appending to lists is all a kept message costs."""

    def __init__(self, in_progress: InProgressCollector):
        self.in_progress = in_progress
        self.incs: list[Any] = []  # counter children, one entry per increment
        self.observed: list[tuple[Any, float]] = []  # (histogram child, value)
        self.gauge: list[tuple[tuple[int, LabelKey], int]] = []  # ((partition, label key), delta of in-progress)

    def flush(self) -> None:
        for child, n in Tally(self.incs).items():
            child.inc(n)
        for child, value in self.observed:
            child.observe(value)
        moves: dict[tuple[int, LabelKey], int] = {}
        for key, delta in self.gauge:
            moves[key] = moves.get(key, 0) + delta
        for (partition, key), delta in moves.items():
            if delta:
                self.in_progress.add(partition, key, delta)
        self.incs.clear()
        self.observed.clear()
        self.gauge.clear()


class Labelled:
    """A labelled metric whose children are looked up once per label set: `prometheus_client`'s own `labels()`
    validates and locks on every call, several microseconds per event on the worker's hot path. Label sets
    are bounded by the policies, and so is this cache."""

    def __init__(self, metric: Counter | Histogram):
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.events = Labelled(Counter("sla_events", "Workflow events applied", ["process", "type"], registry=r))
        self.invalid = Labelled(Counter("sla_invalid_events", "Workflow events rejected, by reason", ["reason"],
                                        registry=r))
        self.runs_started = Labelled(Counter("sla_runs_started", "Node runs opened", ["process", "node", "segment"],
                                             registry=r))
        self.outcomes = Labelled(Counter("sla_run_outcomes", "Node runs ended, by final state",
                                         ["process", "node", "segment", "state"], registry=r))
        self.crossings = Labelled(Counter("sla_crossings", "Crossings announced",
                                          ["process", "node", "segment", "kind"], registry=r))
        self.duration = Labelled(Histogram("sla_run_duration_seconds", "Working seconds of completed runs",
                                           ["process", "node"], buckets=DURATION_BUCKETS, registry=r))
        self.ratio = Labelled(Histogram("sla_run_elapsed_ratio", "Elapsed / commitment of completed runs",
                                        ["process", "node"], buckets=RATIO_BUCKETS, registry=r))
        self.delay = Labelled(Histogram("sla_warning_delay_seconds", "detected_at - crossed_at of announced crossings",
                                        ["kind"], buckets=DELAY_BUCKETS, registry=r))
        self.ticks = Labelled(Counter("sla_ticks", "Clock ticks processed; caught_up=false: the partition had "
                                      "unapplied events, so the clock only advanced to the last applied event's "
                                      "write time", ["caught_up"], registry=r))
        self.tick_delay = Histogram("sla_tick_delay_seconds", "Processing time of a tick minus its sending time",
                                    buckets=DELAY_BUCKETS, registry=r)
        self.in_progress = InProgressCollector()
        r.register(self.in_progress)
        observe.build_info(r)
        self.skipped = observe.SkippedRecords(r, "worker", logging.getLogger("slamon.worker"))
        # the worker's own health: is the broker reachable, how long commits take
        self.broker_up = Gauge("slamon_broker_reachable", "1 while this worker reaches the Kafka cluster", registry=r)
        self.commit_seconds = Histogram("slamon_batch_commit_seconds", "Time to commit one partition's batch "
                                        "(outputs, table values and offsets in one transaction)",
                                        buckets=DELAY_BUCKETS, registry=r)
        for reason in REASONS:
            self.invalid.labels(reason)
        for kind in CROSSING_KINDS:
            self.delay.labels(kind)
        for caught_up in ("true", "false"):
            self.ticks.labels(caught_up)

    def prime(self, policies: PolicySet) -> None:
        """Create every label set the policies imply, at zero."""
        for name, p in policies.policies.items():
            for etype in EVENT_TYPES:
                if etype != STATUS_CHANGED or p.statuses is not None:  # status changes apply to a status mapping
                    self.events.labels(name, etype)
            nodes = list(p.nodes) + ([ORDER_NODE] if p.order is not None else [])
            segments = [DEFAULT_SEGMENT, *p.segments]  # segments chosen by `match:` too
            # every early warning of a list is kind `approaching` (its threshold is in the warning, not a label)
            kinds = CROSSING_KINDS if p.early_warning is not None else CROSSING_KINDS[1:]
            for node in nodes:
                self.duration.labels(name, node)
                self.ratio.labels(name, node)
                for seg in segments:
                    self.in_progress.known.add((name, node, seg))
                    self.runs_started.labels(name, node, seg)
                    for state in OUTCOME_STATES:
                        self.outcomes.labels(name, node, seg, state)
                    for kind in kinds:
                        self.crossings.labels(name, node, seg, kind)
