import pytest

from monitor.core.instants import InstantError, format_instant, parse_instant

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
