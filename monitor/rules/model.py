"""The data of the generated rules: the windows, the aggregations, the SLO period and the burn-rate tiers (Google
SRE workbook, chapter "Alerting on SLOs"), and the options of `slamon rules generate`."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.durations import parse_duration
from ..core.instants import US

# Windows reported on dashboards, at every aggregation.
REPORT_WINDOWS = ("1h", "1d", "7d", "30d")
# Extra windows the burn-rate alerts need, recorded at the (process, node) aggregation only.
BURN_ONLY_WINDOWS = ("5m", "30m", "2h", "6h", "3d")
# Windows of a day or more are evaluated every minute: an increase() over 30 days of raw samples is costly, and
# one minute stays well inside Prometheus's 5 minute lookback, so the recorded series never go stale.
SLOW_GROUP_INTERVAL = "1m"
SLOW_WINDOWS = {"6h", "1d", "3d", "7d", "30d"}

# Aggregation (the first part of a recorded name) -> the labels summed by.
AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "process_node_segment": ("process", "node", "segment"),
    "process_node": ("process", "node"),
    "process": ("process",),
}

SLO_PERIOD = "30d"
SLO_PERIOD_HOURS = 30 * 24
# The largest error ratio a burn-rate threshold may ask for. The error ratio of a window is at most 1 (every
# completed run missed the commitment), so the fastest possible burn is 1 / budget; a factor at or above that
# can never fire. Capping the threshold at 0.9 keeps every factor reachable with some margin.
MAX_ERROR_RATIO = 0.9


def window_hours(window: str) -> float:
    """Length of a Prometheus window such as `5m` or `30d`, in hours."""
    return parse_duration(window) / (3600 * US)


@dataclass(frozen=True)
class Tier:
    """One multiwindow burn-rate alert of the SRE workbook (for a 30 day SLO period)."""

    severity: str
    long: str
    short: str
    factor: float
    for_: str


# The workbook's recommendation: page on 2% of the budget in 1h or 5% in 6h, ticket on 10% in 1d or 3d.
WORKBOOK_TIERS = (
    Tier("page", "1h", "5m", 14.4, "2m"),
    Tier("page", "6h", "30m", 6.0, "2m"),
    Tier("ticket", "1d", "2h", 3.0, "15m"),
    Tier("ticket", "3d", "6h", 1.0, "15m"),
)


@dataclass(frozen=True)
class BurnTier:
    """A tier as emitted for one target: the factor actually used and the error-ratio threshold it means."""

    severity: str
    long: str
    short: str
    workbook_factor: float
    factor: float
    threshold: float  # error ratio (share of completed runs that missed the commitment)
    for_: str

    @property
    def budget_spent(self) -> float:
        """Share of the 30 day error budget spent when the long window burns at exactly `factor`."""
        return self.factor * window_hours(self.long) / SLO_PERIOD_HOURS


@dataclass(frozen=True)
class Options:
    job: str = "slamon"
    min_runs: int = 10
    grafana_url: str = "http://localhost:3000"
    quiet_for: str = "30m"
    lag_share: float = 0.8
    max_warning_delay: float = 10.0
    invalid_share: float = 0.05


def budget_of(target: float) -> float:
    return round(1.0 - target, 10)


def burn_tiers(target: float) -> list[BurnTier]:
    """The workbook tiers for `target`, each factor capped at MAX_ERROR_RATIO / budget.

    A tier whose capped factor is not below the one of a faster tier already emitted adds nothing (it looks for
    the same burn over a longer window) and is left out, so e.g. a 90% target pages at 9x (not 14.4x: the
    fastest possible burn is 10x) and an 80% target has no 6h page (its capped factor 4.5 equals the 1h one).
    """
    budget = budget_of(target)
    cap = MAX_ERROR_RATIO / budget
    out: list[BurnTier] = []
    for t in WORKBOOK_TIERS:
        raw = min(t.factor, cap)
        threshold = round(raw * budget, 6)
        if out and threshold >= out[-1].threshold:
            continue
        out.append(BurnTier(t.severity, t.long, t.short, t.factor, round(raw, 4), threshold, t.for_))
    return out
