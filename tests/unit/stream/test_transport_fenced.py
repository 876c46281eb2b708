"""The static member's heartbeat (transport.py): it names the group instance id, and FENCED_INSTANCE_ID ends the
worker. The patch leans on aiokafka's protocol classes and its coordinator's `_send_req`: the first test fails when
aiokafka changes their shape."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import pytest
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.group import HeartbeatRequest, HeartbeatRequest_v1

from monitor.stream import transport


def test_aiokafka_still_has_the_shape_the_patch_relies_on():
    request = HeartbeatRequest("g", 3, "m-1")
    assert (request._group, request._generation_id, request._member_id) == ("g", 3, "m-1")
    assert HeartbeatRequest.API_KEY == 12 and HeartbeatRequest_v1.API_VERSION == 1
    assert HeartbeatRequest_v1.SCHEMA.names == ("group", "generation_id", "member_id")
    assert inspect.iscoroutinefunction(GroupCoordinator._send_req)
    assert "self._group_instance_id = group_instance_id" in inspect.getsource(GroupCoordinator.__init__)
    assert "HeartbeatRequest(self.group_id, self.generation, self.member_id)" in inspect.getsource(
        GroupCoordinator._do_heartbeat)


def test_the_heartbeat_names_the_instance_id_where_the_broker_takes_it():
    static = transport._StaticHeartbeatRequest(HeartbeatRequest("g", 3, "m-1"), "pod-0")
    v3 = static.prepare({12: (0, 4)})
    assert v3.API_VERSION == 3
    assert (v3.group, v3.generation_id, v3.member_id, v3.group_instance_id) == ("g", 3, "m-1", "pod-0")
    assert v3.encode()  # serialisable
    assert static.prepare({12: (0, 2)}).API_VERSION == 1  # a broker before Kafka 2.3


class FakeCoordinator:
    def __init__(self, instance_id, error_code):
        self._group_instance_id = instance_id
        self.sent = []
        self.error_code = error_code

    async def _send_req(self, request):
        self.sent.append(request)
        return SimpleNamespace(error_code=self.error_code)


def test_fenced_instance_id_ends_the_worker(monkeypatch):
    ended = []

    def fatal(message, exc=None):
        ended.append(message)
        raise SystemExit(1)

    monkeypatch.setattr(transport, "fatal", fatal)
    coordinator = FakeCoordinator("pod-0", transport.FENCED_INSTANCE_ID)
    transport._fail_when_fenced(coordinator)
    with pytest.raises(SystemExit):
        asyncio.run(coordinator._send_req(HeartbeatRequest("g", 3, "m-1")))
    assert ended == ["fenced: another worker joined with group instance id pod-0"]
    assert isinstance(coordinator.sent[0], transport._StaticHeartbeatRequest)

    fine = FakeCoordinator("pod-0", 0)
    transport._fail_when_fenced(fine)
    assert asyncio.run(fine._send_req(HeartbeatRequest("g", 3, "m-1"))).error_code == 0

    dynamic = FakeCoordinator(None, transport.FENCED_INSTANCE_ID)
    send = dynamic._send_req
    transport._fail_when_fenced(dynamic)
    assert dynamic._send_req == send  # without an instance id nothing changes


def test_a_refused_assignment_of_a_static_member_is_explained():
    # aiokafka wraps the assignor's AssertionError: KafkaError("Unexpected error during coordination ...")
    from aiokafka.errors import KafkaError

    wrapped = KafkaError("Unexpected error during coordination AssertionError()")
    wrapped.__cause__ = AssertionError()
    static, dynamic = SimpleNamespace(_group_instance_id="pod-0"), SimpleNamespace(_group_instance_id=None)
    assert "pod-0" in transport._why(wrapped, static) and "SLAMON_WEB_PORT" in transport._why(wrapped, static)
    assert transport._why(wrapped, dynamic) == ""
    assert transport._why(KafkaError("group authorization failed"), static) == ""
