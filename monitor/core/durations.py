"""Durations of policies: `45s`, `15m`, `4h`, `2d`, `1d12h30m`, ISO 8601 (`PT4H`, `P1DT2H`), or bare seconds.

A day is 24 hours and a week 7 days of *working* time: limits are amounts of elapsed working time.
Results are integer microseconds.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .instants import US

_UNIT_S = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}

# The longest duration accepted: 100 years of 365.25 days. A limit is added to an instant (integer microseconds
# up to the end of year 9999) and stored in 64-bit JSON integers; a century of working time is far beyond any
# service commitment and keeps every deadline within those bounds.
MAX_DAYS = 36525
MAX_US = MAX_DAYS * 86400 * US
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_COMPACT = re.compile(rf"(?:({_NUMBER})w)?(?:({_NUMBER})d)?(?:({_NUMBER})h)?(?:({_NUMBER})m)?(?:({_NUMBER})s)?\Z")
_ISO = re.compile(
    rf"P(?:({_NUMBER})W)?(?:({_NUMBER})D)?(?:T(?:({_NUMBER})H)?(?:({_NUMBER})M)?(?:({_NUMBER})S)?)?\Z"
)


class DurationError(ValueError):
    """A duration that cannot be read."""


def _show(value: object) -> str:
    """`repr(value)` for a message, shortened (an integer of thousands of digits has no repr at all)."""
    try:
        text = repr(value)
    except ValueError:
        return "a number of thousands of digits"
    return text if len(text) <= 40 else f"{text[:37]}..."


def _to_us(seconds: Decimal, text: object) -> int:
    if seconds > MAX_US // US:
        raise DurationError(f"{_show(text)} is more than {MAX_DAYS}d (100 years): longer durations are not supported")
    us = seconds * US
    if us != us.to_integral_value():
        raise DurationError(f"{_show(text)} is finer than a microsecond")
    return int(us)


def _sum(parts: tuple[str | None, ...], text: object) -> int:
    total = Decimal(0)
    for part, unit in zip(parts, "wdhms", strict=True):
        if part is not None:
            total += Decimal(part) * _UNIT_S[unit]
    return _to_us(total, text)


def parse_duration(value: object) -> int:
    """Parse a duration into microseconds (may be 0; callers decide whether 0 is allowed)."""
    if isinstance(value, bool):
        raise DurationError(f"{_show(value)} is not a duration")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise DurationError(f"{_show(value)} is not a duration")
        if value < 0:
            raise DurationError(f"{_show(value)} is negative")
        return _to_us(Decimal(value) if isinstance(value, int) else Decimal(str(value)), value)
    if not isinstance(value, str):
        raise DurationError(f"{_show(value)} is not a duration (expected e.g. 45s, 4h, 1d12h, PT4H or seconds)")
    text = value.strip()
    if not text:
        raise DurationError("empty duration")
    try:
        return _to_us(Decimal(text), value) if _looks_numeric(text) else _parse_text(text, value)
    except InvalidOperation:
        raise DurationError(f"{_show(value)} is not a duration") from None


def _looks_numeric(text: str) -> bool:
    return bool(re.fullmatch(_NUMBER, text))


def _parse_text(text: str, original: object) -> int:
    upper = text.upper()
    if upper.startswith("P"):
        m = _ISO.match(upper)
        if not m or upper in ("P", "PT") or upper.endswith("T"):
            if re.match(r"P(?:\d+Y|\d+M)", upper):
                raise DurationError(f"{_show(original)}: years and months have no fixed length; use days or weeks")
            raise DurationError(f"{_show(original)} is not an ISO 8601 duration (e.g. PT4H, P1DT2H)")
        week, day, hour, minute, second = m.groups()
        return _sum((week, day, hour, minute, second), original)
    m = _COMPACT.match(text.lower())
    if not m or not any(m.groups()):
        raise DurationError(f"{_show(original)} is not a duration (expected e.g. 45s, 15m, 4h, 2d, 1d12h30m, PT4H)")
    return _sum(m.groups(), original)


def format_duration(us: int) -> str:
    """Microseconds -> compact text (`1d12h`, `45s`, `1.5s`), the inverse of `parse_duration` for display."""
    if us == 0:
        return "0s"
    out = []
    rest = us
    for unit, size in (("d", 86400 * US), ("h", 3600 * US), ("m", 60 * US)):
        n, rest = divmod(rest, size)
        if n:
            out.append(f"{n}{unit}")
    if rest:
        out.append(f"{rest // US}s" if rest % US == 0 else f"{rest / US:g}s")
    return "".join(out)
