"""The wall clock, in the core's unit (integer microseconds since the Unix epoch). The core never reads a clock:
the live monitor, the notifier and the commands read it here and pass instants in."""

from __future__ import annotations

import time


def now_us() -> int:
    return time.time_ns() // 1000
