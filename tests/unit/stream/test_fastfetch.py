"""The Faust internals patch follows the Faust it was written against: when an upgrade changes the drain loop,
this fails, and the copy in monitor/stream/fastfetch.py must be compared with the new one and the digest updated."""

from monitor.stream import fastfetch, transport


def test_faust_drain_loop_has_the_shape_the_copy_follows():
    assert fastfetch.faust_shape() == fastfetch.FAUST_SHAPE


def test_the_setting_switches_the_copy_on_and_off():
    from monitor.settings import Settings

    assert transport.Consumer._drain_messages is not transport.driver.Consumer._drain_messages
    try:
        transport.register(Settings.from_env({"SLAMON_FAST_FETCH": "0"}))
        assert transport.fast_fetch is False
        transport.register(Settings.from_env({}))
        assert transport.fast_fetch is True
    finally:
        transport.register(Settings.from_env({}))
