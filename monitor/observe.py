"""Metrics every slamon process exports besides its own: `slamon_build_info` and
`slamon_skipped_records_total{component, topic, reason}` (records a consumer could not use and moved past)."""

from __future__ import annotations

import logging
import platform

from prometheus_client import CollectorRegistry, Counter, Info, disable_created_metrics

from . import __version__

# No `_created` series: they double the series count and no dashboard or rule reads them.
disable_created_metrics()


def build_info(registry: CollectorRegistry) -> None:
    """`slamon_build_info{version, python} 1`."""
    Info("slamon_build", "The running slamon version", registry=registry).info(
        {"version": __version__, "python": platform.python_version()})


class SkippedRecords:
    """Counts and logs the records one component skips. `reason` must come from a fixed vocabulary (it is a label):
    e.g. `not_utf8`, `not_json`, `not_an_object`, `missing_field`, `wrong_type`, `too_large`."""

    def __init__(self, registry: CollectorRegistry, component: str, log: logging.Logger):
        self.component = component
        self.log = log
        self.counter = Counter("slamon_skipped_records", "Records a consumer could not use and moved past",
                               ["component", "topic", "reason"], registry=registry)

    def skip(self, topic: str, partition: int, offset: int, reason: str, detail: str = "") -> None:
        self.counter.labels(self.component, topic, reason).inc()
        self.log.warning("skipping a record it cannot use", extra={
            "component": self.component, "topic": topic, "partition": partition, "offset": offset,
            "reason": reason, "detail": detail[:300]})
