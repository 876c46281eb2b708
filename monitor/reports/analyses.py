"""The manager's analyses over a source of events: period reports, backtests and limit recommendations. Each is
one replay (two for a backtest) of the events through the core, with a sink of its own (monitor/core/report.py,
backtest.py, recommend.py); this module only wires a source of events to them."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from ..core.backtest import BacktestSink, backtest_document
from ..core.instants import parse_instant
from ..core.periods import Periods
from ..core.policies import PolicySet
from ..core.recommend import RecommendSink, recommend_document
from ..core.replay import Item
from ..core.report import ReportSink, report_document
from ..core.tracking import FirstEvent, TrackingSink
from ..eventlog import replay_source

Items = Callable[[], Iterable[Item]]  # a source of events: a new iterator over them on each call
S = TypeVar("S", bound=TrackingSink)
T = TypeVar("T")


@dataclass(slots=True)
class Replayed:
    """One replay through a sink of an analysis: the replay's result, the finished sink, the judging instant, and
    the first event's time."""

    result: dict[str, Any]
    sink: Any
    now: int | None
    first_at: int | None


def replay_into(policies: PolicySet, items: Items, now: int | None, make_sink: Callable[[], S]) -> Replayed:
    sinks: list[S] = []
    first = FirstEvent()

    def factory() -> S:  # a new sink for each pass of the replay (see core.replay.replay)
        sinks.append(make_sink())
        return sinks[-1]

    result = replay_source(policies, lambda: first.watch(items()), now, factory)
    judged = parse_instant(result["now"]) if result["now"] is not None else None
    if judged is not None:
        sinks[-1].finish(judged)
    return Replayed(result, sinks[-1], judged, first.at)


def period_report(policies: PolicySet, items: Items, period: str, timezone: str = "UTC", now: int | None = None,
                  from_date: date | None = None, to_date: date | None = None,
                  by_segment: bool = False) -> tuple[dict[str, Any], Replayed]:
    """The report of CONTRACTS.md section 8, and the replay it came from (its invalid-event counts)."""
    periods = Periods(period, timezone)
    done = replay_into(policies, items, now, lambda: ReportSink(periods, by_segment))
    return report_document(done.sink, done.first_at, done.now, from_date, to_date), done


def backtest(current: PolicySet, candidate: PolicySet, items: Items, now: int | None = None,
             parallel: bool = True) -> tuple[dict[str, Any], Replayed, Replayed]:
    """The backtest of section 9, and the two replays: the candidate's in a forked process while this one replays
    the current set (two cores: about the time of one replay), or one after the other."""
    if parallel and "fork" in multiprocessing.get_all_start_methods():
        forked = Forked(lambda: _portable(replay_into(candidate, items, now, BacktestSink)))
        try:
            cur = replay_into(current, items, now, BacktestSink)
        except BaseException:
            forked.cancel()
            raise
        cand = forked.result()
    else:
        cur = replay_into(current, items, now, BacktestSink)
        cand = replay_into(candidate, items, now, BacktestSink)
    return backtest_document(cur.now, (cur.result, cur.sink), (cand.result, cand.sink)), cur, cand


def _portable(done: Replayed) -> Replayed:
    """What a backtest needs of a replay, without the open runs (and their calendars): cheap to send."""
    sink = BacktestSink()
    sink.states, sink.processes, sink.crossings = done.sink.states, done.sink.processes, done.sink.crossings
    return Replayed(done.result, sink, done.now, done.first_at)


class Forked(Generic[T]):
    """`run()` in a forked process: `result()` waits for its value (or raises its exception), `cancel()` stops it.
    The child writes nothing to stderr (the parent shows the progress and the errors of the same input)."""

    def __init__(self, run: Callable[[], T]):
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)

        def child() -> None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
            try:
                out: tuple[bool, Any] = (True, run())
            except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
                out = (False, exc)
            send.send(out)

        self._process = context.Process(target=child, daemon=True)
        self._process.start()
        send.close()

    def result(self) -> T:
        try:
            ok, value = self._receive.recv()
        except EOFError:
            raise RuntimeError(f"the replay in process {self._process.pid} ended without a result "
                               f"(exit status {self._process.exitcode})") from None
        finally:
            self._process.join()
            self._receive.close()
        if not ok:
            raise value
        return value

    def cancel(self) -> None:
        self._process.kill()
        self._process.join()
        self._receive.close()


def recommend(policies: PolicySet, items: Items, target: float, tolerance_target: float, granularity: int,
              min_runs: int, by_segment: bool = False, now: int | None = None) -> dict[str, Any]:
    """The recommendations of section 10."""
    done = replay_into(policies, items, now, lambda: RecommendSink(by_segment))
    return recommend_document(policies, done.sink, done.now, target, tolerance_target, granularity, min_runs)
