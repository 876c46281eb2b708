"""A minimal Faust agent on a topic: the ceiling of Faust's per-message machinery on this machine.

Environment: FX_MODE = bare (iterate only) | table (one table write per event) | both (table write and one output
per event); FX_B bootstrap; FX_T topic; FX_N events to process. Run by bench/live_bench.py as
`faust_floor.py worker -l warn`; prints `faust-floor MODE events/s N` once FX_N events were processed.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid

import faust

MODE = os.environ["FX_MODE"]
TOPIC = os.environ["FX_T"]
N = int(os.environ["FX_N"])

app = faust.App(f"fx{uuid.uuid4().hex[:6]}", broker=f"kafka://{os.environ['FX_B']}", store="memory://",
                datadir=tempfile.mkdtemp(prefix="slamon-floor-"),
                topic_partitions=4, topic_disable_leader=True, consumer_auto_offset_reset="earliest",
                key_serializer="raw", value_serializer="raw", web_enabled=False, producer_linger=0.05,
                producer_max_batch_size=262144, broker_max_poll_records=1000, stream_buffer_maxsize=16384)
source = app.topic(TOPIC, key_serializer="raw", value_serializer="raw")
output = app.topic(f"{TOPIC}.fxout", key_serializer="raw", value_serializer="raw", partitions=4)
table = app.Table("t", default=None, partitions=4, key_type=bytes, value_type=bytes)
seen = {"n": 0, "t0": 0.0}


@app.agent(source)
async def count(stream):  # noqa: ANN001 - Faust's stream
    async for ev in stream.events():
        if seen["n"] == 0:
            seen["t0"] = time.perf_counter()
        if MODE in ("table", "both"):
            table[ev.message.key] = ev.message.value
        if MODE == "both":
            output.send_soon(key=ev.message.key, value=ev.message.value)
        seen["n"] += 1
        if seen["n"] == N:
            print(f"faust-floor {MODE} events/s {round(N / (time.perf_counter() - seen['t0']))}", flush=True)
            os._exit(0)


if __name__ == "__main__":
    app.main()
