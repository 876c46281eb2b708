"""Early warnings (CONTRACTS.md sections 1 and 12): `early_warning: f` gives one `approaching` crossing at f*C;
`early_warning: [f1, f2, ...]` gives one per fraction, each with the field `threshold: f` and the warning id suffix
`approaching@{p}`, where `p` is f as written times 100 in plain decimal (`0.875` -> `87.5`, `0.29` -> `29`)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from .durations import format_duration
from .problems import Collector

Early = float | tuple[float, ...]  # one fraction, or a list of them in ascending order
Grades = tuple[tuple[float, int], ...]  # (fraction, amount of working time in microseconds), ascending


@lru_cache(maxsize=4096)
def threshold_label(fraction: float) -> str:
    """`p` of the warning id: the fraction as written (its shortest decimal text) times 100, in plain decimal."""
    text = format((Decimal(repr(float(fraction))) * 100).normalize(), "f")
    return text


def _fraction(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and 0 < value < 1


def parse_early_warning(value: Any, source: str, errors: Collector) -> Early | None:
    """A fraction, or a non-empty list of distinct fractions (sorted); None with a problem otherwise."""
    if value is None:
        return None
    if not isinstance(value, list):
        if _fraction(value):
            return float(value)
        errors.add(source, "early_warning", f"expected a fraction between 0 and 1 (exclusive) or a list of them, "
                                            f"got {value!r}")
        return None
    if not value:
        errors.add(source, "early_warning", "an empty list: give at least one fraction, e.g. [0.5, 0.75]")
        return None
    ok = True
    for i, f in enumerate(value):
        if not _fraction(f):
            errors.add(source, f"early_warning[{i}]", f"expected a fraction between 0 and 1 (exclusive), got {f!r}")
            ok = False
    if not ok:
        return None
    fractions = sorted(float(f) for f in value)
    for a, b in zip(fractions, fractions[1:], strict=False):
        if a == b:
            errors.add(source, "early_warning", f"{a!r} is given twice: the thresholds must be distinct")
            return None
    return tuple(fractions)


def amounts(early: Early | None, commitment: int, source: str, where: str,
            errors: Collector) -> tuple[int | None, Grades | None]:
    """The early warnings of a commitment: (the amount of a single `early_warning`, or None; the (fraction, amount)
    pairs of a list, or None). Two fractions whose amounts round to the same microsecond are not distinct: a
    problem."""
    if early is None:
        return None, None
    if type(early) is float:
        return round(early * commitment), None
    grades = tuple((f, round(f * commitment)) for f in early)  # type: ignore[union-attr]
    for (f1, a1), (f2, a2) in zip(grades, grades[1:], strict=False):
        if a1 == a2:
            errors.add(source, "early_warning", f"{f1!r} and {f2!r} are not distinct thresholds for {where} (commitment "
                                                f"{format_duration(commitment)}): both fall at {format_duration(a1)}")
            return None, None
    return None, grades
