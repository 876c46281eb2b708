"""Prometheus recording, SLO burn-rate and monitor-health rules, generated from the policies so they never drift."""

from .generate import HEALTH_FILE, RECORDING_FILE, SLO_FILE, generate, render
from .health import health_groups
from .model import (
    AGGREGATIONS,
    BURN_ONLY_WINDOWS,
    MAX_ERROR_RATIO,
    REPORT_WINDOWS,
    SLO_PERIOD,
    SLO_PERIOD_HOURS,
    SLOW_GROUP_INTERVAL,
    SLOW_WINDOWS,
    WORKBOOK_TIERS,
    BurnTier,
    Options,
    Tier,
    budget_of,
    burn_tiers,
    window_hours,
)
from .recording import recorded_names, recording_groups
from .slo import slo_groups

__all__ = [
    "AGGREGATIONS",
    "BURN_ONLY_WINDOWS",
    "HEALTH_FILE",
    "MAX_ERROR_RATIO",
    "RECORDING_FILE",
    "REPORT_WINDOWS",
    "SLOW_GROUP_INTERVAL",
    "SLOW_WINDOWS",
    "SLO_FILE",
    "SLO_PERIOD",
    "SLO_PERIOD_HOURS",
    "WORKBOOK_TIERS",
    "BurnTier",
    "Options",
    "Tier",
    "budget_of",
    "burn_tiers",
    "generate",
    "health_groups",
    "recorded_names",
    "recording_groups",
    "render",
    "slo_groups",
    "window_hours",
]
