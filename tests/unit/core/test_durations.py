import pytest

from monitor.core.durations import MAX_US, DurationError, format_duration, parse_duration

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


def test_durations_beyond_100_years_are_rejected_with_the_limit():
    for big in ["99999999999999999999d", "36526d", "36525d1s", "P5218W", "3155760001", 3155760001, 3.2e9, 10**5000,
                "9" * 5000]:
        with pytest.raises(DurationError, match=r"more than 36525d \(100 years\).*not supported"):
            parse_duration(big)
    assert parse_duration("36525d") == parse_duration(3155760000) == MAX_US == 36525 * 86400 * S  # the longest
