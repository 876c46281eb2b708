"""The external sort of imported lines: time order, ties in the order added, whether it spills or not."""

from __future__ import annotations

import random

import pytest

from monitor.importers.sorting import TimeSorter


@pytest.mark.parametrize("chunk", [1, 7, 100, 10_000])
def test_lines_come_out_in_time_order_with_ties_in_the_order_added(chunk):
    rng = random.Random(chunk)
    items = [(rng.randrange(0, 50) * 1_000_000, f"line {i} {'x' * rng.randrange(0, 5)}\n".encode())
             for i in range(1000)]
    sorter = TimeSorter(chunk)
    for at, line in items:
        sorter.add(at, line)
    expected = [line for _, line in sorted(items, key=lambda x: x[0])]  # sorted() is stable
    assert list(sorter.lines()) == expected
    assert (len(sorter.runs) > 0) == (chunk < len(items))
    sorter.close()
    assert sorter.runs == []


def test_lines_may_contain_spaces_and_large_times():
    sorter = TimeSorter(2)
    for at, line in [(253402300799999999, b"a b c\n"), (0, b" lead\n"), (5, b"\n")]:
        sorter.add(at, line)
    assert list(sorter.lines()) == [b" lead\n", b"\n", b"a b c\n"]


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_times_before_1970_and_far_ahead_sort_across_runs(chunk):
    times = [5, -62135596800000000, 253402300799999999, 0, -1, 5, -1]
    sorter = TimeSorter(chunk)
    for i, at in enumerate(times):
        sorter.add(at, b"%d\n" % i)
    expected = [b"%d\n" % i for i, _ in sorted(enumerate(times), key=lambda x: x[1])]
    assert list(sorter.lines()) == expected
    sorter.close()
