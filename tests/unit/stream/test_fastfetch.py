"""The Faust internals patch follows the Faust it was written against: when an upgrade changes the drain loop,
this fails, and the copy in monitor/stream/fastfetch.py must be compared with the new one and the digest updated."""

from monitor.stream import fastfetch, transport


def test_faust_drain_loop_has_the_shape_the_copy_follows():
    assert fastfetch.faust_shape() == fastfetch.FAUST_SHAPE


def test_the_transport_uses_the_copy_only_when_switched_on():
    assert transport.Consumer._drain_messages is not transport.driver.Consumer._drain_messages
