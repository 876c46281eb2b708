"""The burn-rate tiers derived from a target: every emitted factor can fire, and the workbook's factors are capped
only where they could not."""

from __future__ import annotations

import math

import pytest

from monitor.rules import MAX_ERROR_RATIO, WORKBOOK_TIERS, burn_tiers


@pytest.mark.parametrize("target", [0.05, 0.5, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999])
def test_every_burn_factor_can_fire(target):
    budget = 1 - target
    tiers = burn_tiers(target)
    assert tiers[0].severity == "page" and (tiers[0].long, tiers[0].short) == ("1h", "5m")
    for t in tiers:
        assert t.factor < 1 / budget, "the error ratio can never exceed 1: a factor >= 1/budget cannot fire"
        assert t.threshold <= MAX_ERROR_RATIO + 1e-9
        assert math.isclose(t.threshold, t.factor * budget, rel_tol=1e-3)
        assert t.factor <= t.workbook_factor
    factors = [t.factor for t in tiers]
    assert factors == sorted(factors, reverse=True) and len(set(factors)) == len(factors)


def test_burn_factors_of_the_demo_targets_and_of_a_high_target():
    assert [(t.severity, t.long, t.factor, t.threshold) for t in burn_tiers(0.9)] == [
        ("page", "1h", 9.0, 0.9), ("page", "6h", 6.0, 0.6), ("ticket", "1d", 3.0, 0.3), ("ticket", "3d", 1.0, 0.1)]
    assert [(t.severity, t.long, t.factor, t.threshold) for t in burn_tiers(0.8)] == [
        ("page", "1h", 4.5, 0.9), ("ticket", "1d", 3.0, 0.6), ("ticket", "3d", 1.0, 0.2)]
    # a 99.9% target leaves the workbook's factors as they are
    assert [t.factor for t in burn_tiers(0.999)] == [t.factor for t in WORKBOOK_TIERS]
    assert [t.factor for t in burn_tiers(0.5)] == [1.8, 1.0]
