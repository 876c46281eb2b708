"""What the manager's analyses (period reports, backtests, recommendations) share on top of the replay: a replay
sink that keeps the runs still open, to judge them after the replay, and a watch over the events for the first
event time. Their sinks build no warning records (only the replay prints warnings)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .engine import OrderState, Run
from .events import Event
from .replay import Item, ReplaySink


class TrackingSink(ReplaySink):
    """A replay sink that knows the open runs; subclasses tally ended runs in `ended`."""

    def __init__(self) -> None:
        super().__init__()
        self.open: dict[int, tuple[OrderState, Run]] = {}  # id(run) -> the order and the run, while it is open

    def run_started(self, state: OrderState, run: Run) -> None:
        self.open[id(run)] = (state, run)

    def warning(self, state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> None:
        pass

    def outcome(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None:
        del self.open[id(run)]
        self.ended(state, run, run_state, ended_at, elapsed)

    def ended(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None:
        raise NotImplementedError

    def finish(self, now: int) -> None:
        """Judge the runs in `open` at `now`, after the replay (which judged them at the same instant)."""
        raise NotImplementedError


class FirstEvent:
    """The earliest `at` of the events read (None before any): `watch` passes the items through."""

    def __init__(self) -> None:
        self.at: int | None = None

    def watch(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            if type(item) is Event and (self.at is None or item.at < self.at):
                self.at = item.at
            yield item
