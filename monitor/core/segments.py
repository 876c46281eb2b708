"""Segments chosen by attributes (CONTRACTS.md section 12): a segment with `match:` holds a run whose starting event
satisfies all its conditions on `segment` and `attrs.NAME`; the first such segment in file order wins.

A condition holds when the value (the event's segment, `default` when it has none; or the attribute's JSON text with
strings unquoted) is one of the condition's strings. An absent attribute, or one whose value is null, holds none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice, product
from typing import Any

import orjson

from .problems import Collector

SEGMENT_KEY = "segment"
ATTRS_PREFIX = "attrs."

Condition = tuple[str | None, frozenset[str]]  # attribute name (None: the event's segment), the accepted values
Matcher = tuple[str, tuple[Condition, ...]]  # segment name, its conditions


def parse_match(spec: Any, source: str, where: str, errors: Collector) -> tuple[Condition, ...] | None:
    """The conditions of a `match:` mapping, in its order; None with a problem when it is not usable."""
    if not isinstance(spec, dict) or not spec:
        errors.add(source, where, "expected a non-empty mapping of `segment` or `attrs.NAME` to a value or a list of "
                                  "values")
        return None
    conditions: list[Condition] = []
    ok = True
    for key, value in spec.items():
        here = f"{where}.{key}"
        if key == SEGMENT_KEY:
            name = None
        elif isinstance(key, str) and key.startswith(ATTRS_PREFIX) and len(key) > len(ATTRS_PREFIX):
            name = key[len(ATTRS_PREFIX):]
        else:
            errors.add(source, here, "a condition must be on `segment` or on `attrs.NAME`")
            ok = False
            continue
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if not isinstance(v, str)]
        if bad or not values:
            shown = f"{bad[0]!r} is not a text (quote it: '{bad[0]}')" if bad else "an empty list matches nothing"
            errors.add(source, here, f"expected a text or a list of texts: {shown}")
            ok = False
            continue
        conditions.append((name, frozenset(values)))
    return tuple(conditions) if ok else None


def _text(value: Any) -> str:
    return value if type(value) is str else orjson.dumps(value).decode()


def holds(conditions: tuple[Condition, ...], segment: str, attrs: dict[str, Any] | None) -> bool:
    for name, values in conditions:
        if name is None:
            if segment not in values:
                return False
            continue
        value = attrs.get(name) if attrs is not None else None
        if value is None or _text(value) not in values:
            return False
    return True


def first_match(matchers: tuple[Matcher, ...], segment: str, attrs: dict[str, Any] | None) -> str | None:
    """The first segment, in file order, whose conditions all hold on the event; None when none does."""
    for name, conditions in matchers:
        if holds(conditions, segment, attrs):
            return name
    return None


# ---------------------------------------------------------------- the matrix `slamon policy check` prints

OTHER = "*"  # in the matrix: any other value (for an attribute: also absent)
_UNLISTED = "\x00"  # a segment name or value no condition lists (events cannot carry it: it is no valid text here)


def matrix_keys(matchers: tuple[Matcher, ...]) -> list[tuple[str, list[str]]]:
    """Each key the conditions use (`segment`, `attrs.NAME`), in order of first use, with the values they list."""
    keys: dict[str | None, list[str]] = {}
    for _, conditions in matchers:
        for name, values in conditions:
            listed = keys.setdefault(name, [])
            listed += sorted(v for v in values if v not in listed)
    return [(SEGMENT_KEY if name is None else ATTRS_PREFIX + name, values) for name, values in keys.items()]


def matrix_rows(matchers: tuple[Matcher, ...], resolve: Callable[[str, dict[str, Any] | None], str],
                limit: int | None = None) -> Iterator[tuple[list[str], str]]:
    """Every combination of the listed values (and `*`, any other) of `matrix_keys`, with the segment a run
    starting with them gets under `resolve(segment, attrs)`; at most `limit` rows."""
    keys = matrix_keys(matchers)
    choices = [[*values, OTHER] for _, values in keys]
    for combo in islice(product(*choices), limit):
        segment = _UNLISTED  # a segment the policy does not name, unless the combination says which
        attrs: dict[str, Any] = {}
        for (key, _), value in zip(keys, combo, strict=True):
            if key == SEGMENT_KEY:
                segment = _UNLISTED if value == OTHER else value
            elif value != OTHER:
                attrs[key[len(ATTRS_PREFIX):]] = value
        got = resolve(segment, attrs or None)
        yield list(combo), "(as given)" if got == _UNLISTED else got


def matrix_size(matchers: tuple[Matcher, ...]) -> int:
    n = 1
    for _, values in matrix_keys(matchers):
        n *= len(values) + 1
    return n
