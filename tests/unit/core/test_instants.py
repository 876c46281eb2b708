import random

import pytest

from monitor.core.instants import MAX_INSTANT, MIN_INSTANT, InstantError, format_instant, parse_instant

S = 1_000_000


def test_instants_with_offsets_are_the_same_instant():
    assert parse_instant("2026-11-21T08:00:00Z") == parse_instant("2026-11-21T11:00:00+03:00")
    assert parse_instant("2026-11-21T08:00:00.25Z") - parse_instant("2026-11-21T08:00:00Z") == S // 4
    # nanoseconds are truncated to microseconds
    assert parse_instant("2026-11-21T08:00:00.123456789Z") % S == 123456
    assert parse_instant("2026-11-21t08:00:00z") == parse_instant("2026-11-21T08:00:00Z")


@pytest.mark.parametrize(
    "bad", ["2026-11-21T08:00:00", "2026-11-21", "2026-11-21T08:00Z", "20261121T080000Z", "2026-13-01T00:00:00Z",
            "2026-11-21T08:00:00+0300", "yesterday", 1700000000, None],
)
def test_times_without_offset_or_unparsable_are_rejected(bad):
    with pytest.raises(InstantError):
        parse_instant(bad)


def test_format_instant_is_utc_with_z():
    assert format_instant(parse_instant("2026-11-21T11:00:00+03:00")) == "2026-11-21T08:00:00Z"
    assert format_instant(parse_instant("2026-11-21T08:00:00.5Z")) == "2026-11-21T08:00:00.500000Z"


def test_out_of_range_and_impossible_instants_raise_only_instant_error():
    for text in ["0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00",
                 "9999-12-31T23:59:59-23:59", "1969-12-31T23:59:59Z", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z",
                 "2026-01-01T00:00:60Z", "2026-01-01T00:00:00+24:00", "\u0662\u0660\u0662\u0666-01-01T00:00:00Z",
                 "2026-01-01T00:00:00.\u0661Z"]:
        with pytest.raises(InstantError):
            parse_instant(text)


def test_random_texts_of_the_right_shape_raise_nothing_but_instant_error():
    rng = random.Random(7)
    digits = "0123456789"

    def d(n: int) -> str:
        return "".join(rng.choice(digits) for _ in range(n))

    for _ in range(20_000):
        text = f"{d(4)}-{d(2)}-{d(2)}T{d(2)}:{d(2)}:{d(2)}{rng.choice(['', '.' + d(3)])}{rng.choice(['Z', '+', '-'])}"
        if not text.endswith("Z"):
            text += f"{d(2)}:{d(2)}"
        try:
            us = parse_instant(text)
        except InstantError:
            continue
        assert MIN_INSTANT <= us <= MAX_INSTANT
        format_instant(us)  # every accepted instant can be written back
