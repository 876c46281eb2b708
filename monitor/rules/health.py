"""Health rules: the monitor's own health: workers down, no events applied, consumer lag (from
`sla_ticks_total{caught_up="false"}`), announcement delay of warnings, rejected events."""

from __future__ import annotations

from typing import Any

from .model import Options


def health_groups(opts: Options) -> list[dict[str, Any]]:
    job = f'job="{opts.job}"'
    dash = f"{opts.grafana_url.rstrip('/')}/d/slamon-operations/slamon-operations"
    q = opts.quiet_for
    return [{"name": "slamon-health", "rules": [
        {
            "alert": "SlamonNoWorkers",
            "expr": f"sum(up{{{job}}}) == 0 or absent(up{{{job}}})",
            "for": "2m",
            "labels": {"severity": "page", "component": "slamon"},
            "annotations": {
                "summary": "No slamon worker is up: SLA breaches are not being detected",
                "description": f"Prometheus reaches no target of job {opts.job}. Nothing announces breaches until a "
                               "worker runs again (missed crossings are announced late, when it does). Check the "
                               "worker processes or containers and their logs.",
                "dashboard": dash,
            },
        },
        {
            "alert": "SlamonWorkerDown",
            "expr": f"up{{{job}}} == 0",
            "for": "5m",
            "labels": {"severity": "ticket", "component": "slamon"},
            "annotations": {
                "summary": "slamon worker {{ $labels.instance }} is down",
                "description": "Prometheus cannot scrape {{ $labels.instance }}. The other workers take its "
                               "partitions over after SLAMON_SESSION_TIMEOUT; with fewer workers each has more "
                               "partitions to follow. Check the process and its log (JSON lines on stderr).",
                "dashboard": dash,
            },
        },
        {
            "alert": "SlamonNoEventsProcessed",
            "expr": (f"(sum(increase(sla_events_total{{{job}}}[{q}])) or vector(0)) == 0\n"
                     f"and on() sum(up{{{job}}}) > 0"),
            "for": "5m",
            "labels": {"severity": "ticket", "component": "slamon"},
            "annotations": {
                "summary": f"slamon workers are up but applied no workflow event in {q}",
                "description": "Either nothing is produced to workflow.events (check the producers), or every event "
                               "is rejected (see sla_invalid_events_total and sla.deadletter), or the workers are "
                               "not consuming (check /readyz and the consumer group). Silence this alert for "
                               "processes that are legitimately quiet at night.",
                "dashboard": dash,
            },
        },
        {
            "alert": "SlamonConsumerLagging",
            "expr": (f'sum by (job, instance) (rate(sla_ticks_total{{{job},caught_up="false"}}[5m]))\n'
                     f"/ sum by (job, instance) (rate(sla_ticks_total{{{job}}}[5m])) > {opts.lag_share:g}"),
            "for": "10m",
            "labels": {"severity": "ticket", "component": "slamon"},
            "annotations": {
                "summary": "slamon worker {{ $labels.instance }} is behind on events "
                           "({{ $value | humanizePercentage }} of its ticks found unapplied events)",
                "description": "A tick that finds its partition behind holds that partition's clock back, so "
                               "breach warnings wait (they are never wrong, only late). Sustained, the worker "
                               "cannot keep up: add partitions and workers, or look for a slow sink or broker.",
                "dashboard": dash,
            },
        },
        {
            "alert": "SlamonWarningDelayHigh",
            "expr": (f"histogram_quantile(0.9, sum by (le) (rate(sla_warning_delay_seconds_bucket{{{job}}}[15m])))"
                     f" > {opts.max_warning_delay:g}"),
            "for": "10m",
            "labels": {"severity": "ticket", "component": "slamon"},
            "annotations": {
                "summary": "slamon announces breaches late: p90 delay {{ $value | humanizeDuration }} "
                           "after the crossing instant",
                "description": f"The 90th percentile of detected_at - crossed_at exceeds {opts.max_warning_delay:g}s "
                               "(normally about one or two SLAMON_TICK_INTERVAL). Look at the lag signal "
                               "(sla_ticks_total{caught_up=\"false\"}) and at sla_tick_delay_seconds (overload).",
                "dashboard": dash,
            },
        },
        {
            "alert": "SlamonInvalidEventsHigh",
            "expr": (f"sum(rate(sla_invalid_events_total{{{job}}}[15m]))\n"
                     f"/ (sum(rate(sla_events_total{{{job}}}[15m])) + sum(rate(sla_invalid_events_total{{{job}}}[15m])))"
                     f" > {opts.invalid_share:g}"),
            "for": "15m",
            "labels": {"severity": "ticket", "component": "slamon"},
            "annotations": {
                "summary": "{{ $value | humanizePercentage }} of workflow events are rejected",
                "description": "Rejected events go to sla.deadletter with their reason and original bytes; "
                               "sla_invalid_events_total{reason} says which check fails (malformed, unknown_process, "
                               "unknown_node, out_of_order, ...). Usually a producer or a policy changed.",
                "dashboard": dash,
            },
        },
    ]}]
