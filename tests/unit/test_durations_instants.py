import pytest

from monitor.core.durations import DurationError, format_duration, parse_duration
from monitor.core.instants import InstantError, format_instant, parse_instant

S = 1_000_000


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("15m", 900), ("4h", 14400), ("2d", 172800), ("1d12h30m", 131400), ("PT4H", 14400),
     ("P1DT2H", 93600), ("PT30M", 1800), ("P1W", 604800), ("3600", 3600), (3600, 3600), (90.5, 90.5),
     ("1.5h", 5400), ("pt4h", 14400), (" 4h ", 14400), ("0s", 0)],
)
def test_duration_forms(text, seconds):
    assert parse_duration(text) == int(seconds * S)


@pytest.mark.parametrize("bad", ["", "abc", "4x", "h", "1h30", "P", "PT", "P1Y", "P2M", "-5", -5, True, None, [1], "4h4h"])
def test_unreadable_durations_are_rejected(bad):
    with pytest.raises(DurationError):
        parse_duration(bad)


def test_year_and_month_are_explained():
    with pytest.raises(DurationError, match="no fixed length"):
        parse_duration("P1M")


@pytest.mark.parametrize("text", ["45s", "1d12h30m", "7d", "1h1s"])
def test_format_duration_round_trips(text):
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


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
