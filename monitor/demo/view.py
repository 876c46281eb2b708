"""The demo's live view: warnings and dead letters as they happen, one line each."""

from __future__ import annotations

import orjson

from .. import kafka
from ..catalogue import DEADLETTER, WARNINGS, topic_names
from ..core.instants import US, parse_instant
from ..settings import Settings

COLORS = {"approaching": "\033[33m", "commitment_breached": "\033[35m", "tolerance_breached": "\033[31;1m",
          "resolved": "\033[32m"}



async def live_view(settings: Settings, color: bool) -> None:
    """Print every warning and dead letter from now on, one line each (coloured by kind on a terminal)."""
    names = topic_names(settings.topic_prefix)
    consumer = kafka.consumer(settings, names[WARNINGS], names[DEADLETTER], client_id="slamon-demo-view",
                              group_id=None, auto_offset_reset="latest")
    await consumer.start()
    try:
        async for m in consumer:
            v = orjson.loads(m.value)
            if m.topic == names[DEADLETTER]:
                print(f"{v['received_at'][11:19]}  dead letter          {v['reason']}: {v['detail'][:70]}", flush=True)
                continue
            kind = v["kind"]
            label = kind.replace("_", " ").upper()
            where = f"{v['process']}/{v['node']}"
            limit = {"approaching": "early warning", "commitment_breached": f"commitment {v['commitment_s']:g}s",
                     "tolerance_breached": f"tolerance {v['tolerance_s']:g}s", "resolved": v["state"]}[kind]
            delay = (parse_instant(v["detected_at"]) - parse_instant(v["crossed_at"])) / US
            line = (f"{v['crossed_at'][11:19]}  {label:<20} {where:<34} {v['order_id']} run {v['run']}  "
                    f"elapsed {v['elapsed_s']:6.1f}s  ({limit}; owner {v['owner'] or '-'}; "
                    f"{'+' if kind != 'resolved' else ''}{delay:.2f}s)")
            print(f"{COLORS[kind]}{line}\033[0m" if color else line, flush=True)
    finally:
        await consumer.stop()
