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


def _full_parse(text):
    """The uncached parse (regex and datetime), or the InstantError class."""
    from monitor.core.instants import _parse_instant
    try:
        return _parse_instant(text)
    except InstantError:
        return InstantError


def test_the_fast_path_gives_the_full_parse_answer_for_every_text():
    # parse_instant hands the usual UTC shapes to datetime.fromisoformat after checking the separators only: any
    # text of those lengths, whatever is in the digit places (non-ASCII digits, signs, blanks, underscores,
    # surrogates, impossible dates and times, years before 1970), must be rejected or read exactly as the full parse
    # (regex, then datetime) does
    rng = random.Random(11)
    pool = "0123456789" * 4 + "-:.TtZz +_\u0661\u0660\uff10\uff19\u00b2\u2167a\ud800\x00"
    bases = ["2026-04-01T00:00:00Z", "2026-04-01T23:59:59.999Z", "2026-04-01T12:30:05.123456Z", "1970-01-01T00:00:00Z",
             "9999-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z", "2024-02-29T00:00:00Z",
             "2026-02-29T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z", "2026-01-01T00:00:60Z",
             "0001-01-01T00:00:00.000Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z"]
    texts = list(bases)
    for _ in range(40_000):
        chars = list(rng.choice(bases))
        for _ in range(rng.choice((1, 1, 2, 3))):
            chars[rng.randrange(len(chars))] = rng.choice(pool)
        texts.append("".join(chars))
    for _ in range(10_000):  # random valid instants of each shape
        us = rng.randrange(0, 253402300800 * S)
        text = format_instant(us - us % S)[:-1]
        texts.append(text + rng.choice(["Z", f".{rng.randrange(1000):03d}Z", f".{rng.randrange(S):06d}Z"]))
    for text in texts:
        expected = _full_parse(text)
        if expected is InstantError:
            with pytest.raises(InstantError):
                parse_instant(text)
        else:
            assert parse_instant(text) == expected, text
    assert parse_instant("2026-04-01T00:00:59.999999Z") == parse_instant("2026-04-01T00:01:00Z") - 1
    assert parse_instant("2026-04-01T00:00:07.250Z") == 1775001607250000  # 2026-04-01 is day 20544 since the epoch


def test_the_usual_utc_shapes_take_the_fast_path(monkeypatch):
    from monitor.core import instants

    def refused(text):
        raise AssertionError(f"the full parse was asked for {text!r}")

    monkeypatch.setattr(instants, "_parse_instant", refused)
    assert parse_instant("2026-04-01T00:00:07Z") == 1775001607000000
    assert parse_instant("2026-04-01T00:00:07.250Z") == 1775001607250000
    assert parse_instant("2026-04-01T00:00:07.000001Z") == 1775001607000001
