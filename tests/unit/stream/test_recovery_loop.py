"""The watchdog of Faust's recovery loop (recovery.recovery_loop_ended / watch_recovery).

A recovery step that outlasts broker_request_timeout makes Faust raise ServiceStopped inside its recovery loop, and
the loop ends as if the worker were stopping: no later rebalance is ever recovered, and the worker would answer 503
for ever. The watchdog ends the worker instead. These tests use a real `mode` service (the library Faust's services
are built on) with a task of the same name, and check that Faust's Recovery still has that task."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import pytest
from faust.tables.recovery import Recovery, ServiceStopped
from mode import Service

from monitor.stream import recovery as recovery_module
from monitor.stream.recovery import RECOVERY_LOOP, recovery_loop_ended, watch_recovery


class LoopService(Service):
    """Runs a task named as Faust's recovery loop until `end` is set."""

    def __post_init__(self) -> None:
        self.end = asyncio.Event()

    @Service.task
    async def _restart_recovery(self) -> None:
        await self.end.wait()


def test_faust_recovery_runs_its_loop_as_the_task_the_watchdog_looks_for():
    assert RECOVERY_LOOP in Recovery._tasks[Recovery._get_class_id()]
    loop_source = inspect.getsource(Recovery._restart_recovery.fun)
    assert "except ServiceStopped" in loop_source and "break" in loop_source  # the way it ends (see the module)
    assert ServiceStopped.__module__ == "faust.tables.recovery"


def test_the_loop_is_seen_running_then_ended_and_a_stopping_service_is_not_an_end():
    async def scenario() -> list[bool]:
        service = LoopService()
        await service.start()
        seen = [recovery_loop_ended(service)]
        service.end.set()
        await asyncio.sleep(0.05)
        seen.append(recovery_loop_ended(service))
        await service.stop()
        seen.append(recovery_loop_ended(service))
        return seen

    assert asyncio.run(scenario()) == [False, True, False]


def test_the_watchdog_ends_the_worker_when_the_loop_has_ended(monkeypatch):
    ended: list[str] = []

    def fatal(message, exc=None):
        ended.append(message)
        raise Ended(message)

    monkeypatch.setattr(recovery_module, "fatal", fatal)
    monkeypatch.setattr(recovery_module.asyncio, "sleep", _no_wait)

    async def scenario() -> None:
        service = LoopService()
        await service.start()
        app = SimpleNamespace(tables=SimpleNamespace(recovery=service), should_stop=False)
        service.end.set()
        await _real_sleep(0.05)
        try:
            with pytest.raises(Ended):
                await asyncio.wait_for(watch_recovery(app, lambda: False), 5)
        finally:
            await service.stop()

    asyncio.run(scenario())
    assert ended and "table recovery stopped" in ended[0]


class Ended(Exception):
    """What the test's `fatal` raises instead of ending the process."""


_real_sleep = asyncio.sleep


async def _no_wait(_seconds: float) -> None:
    await _real_sleep(0)


def test_a_loop_that_crashed_its_service_is_left_to_faust():
    class Crashing(Service):
        @Service.task
        async def _restart_recovery(self) -> None:
            raise RuntimeError("a recovery step failed")

    async def scenario() -> bool:
        service = Crashing()
        await service.start()
        await asyncio.sleep(0.05)
        try:
            return recovery_loop_ended(service)
        finally:
            await service.stop()

    assert asyncio.run(scenario()) is False
