"""`make bench`: the replay benchmark, the manager's commands, then the live benchmark (on a stack of its own,
stopped and removed at its end)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    print("== replay: 1,000,000 events over 100,000 orders", flush=True)
    rc = subprocess.call([sys.executable, str(HERE / "replay_bench.py")])
    print("\n== report, backtest, recommend and import xes against the replay, same file", flush=True)
    rc |= subprocess.call([sys.executable, str(HERE / "report_bench.py")])
    print("\n== live: one worker on the local broker, against a plain aiokafka loop, the baseline worker and a "
          "Quix Streams peer", flush=True)
    rc |= subprocess.call([sys.executable, str(HERE / "live_bench.py"), "--events", "100000", "--seconds", "30"])
    return rc


if __name__ == "__main__":
    sys.exit(main())
