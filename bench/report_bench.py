"""Benchmark of the manager's analyses against the replay, on the replay benchmark's file (1,000,000 events over
100,000 orders by default): `slamon report` (weeks in Berlin time, and days), `slamon backtest` (limits halved),
`slamon recommend`, each through the code path of its command and measured in the same process as a plain replay
of the same file; then `slamon import xes` on an XES export of one process's orders (about 100 MB), in a process of
its own, with its peak memory, next to `slamon replay` of the same events.

Run with `make bench` (or `.venv/bin/python bench/report_bench.py [--events N] [--xes-events N] [--repeat N]`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from replay_bench import CALENDARS, POLICIES, generate  # noqa: E402

from monitor.commands.backtest import default_shards, file_by_shard, run_backtest  # noqa: E402
from monitor.core.policies import build_policy_set  # noqa: E402
from monitor.eventlog import read_events, replay_file  # noqa: E402
from monitor.reports.analyses import backtest, period_report, recommend  # noqa: E402


def halved(policy: dict) -> dict:
    nodes = {n: {**lim, "commitment": f"{_seconds(lim['commitment']) // 2}s"} for n, lim in policy["nodes"].items()}
    return {**policy, "nodes": nodes}


def _seconds(text: str) -> int:
    return int(text[:-1]) * {"m": 60, "h": 3600, "d": 86400}[text[-1]]


def best(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def export_xes(jsonl: Path, xes: Path, limit: int, process: str = "install") -> int:
    """The events of `process` among the first `limit` of the file as an XES log, one trace per order (lifecycle
    start / complete / suspend / resume). Returns the number of events written."""
    transitions = {"node_started": "start", "node_completed": "complete", "node_paused": "suspend",
                   "node_resumed": "resume"}
    traces: dict[str, list[dict]] = {}
    with jsonl.open("rb") as f:
        for n, line in enumerate(f):
            if n == limit:
                break
            e = orjson.loads(line)
            if e["process"] == process:
                traces.setdefault(e["order_id"], []).append(e)
    with xes.open("w") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1.0">\n')
        for order, evs in traces.items():
            out.write(f'<trace><string key="concept:name" value={quoteattr(order)}/>\n')
            for e in evs:
                out.write(f'<event><string key="concept:name" value="{e["node"]}"/><string key="lifecycle:transition" '
                          f'value="{transitions[e["type"]]}"/><date key="time:timestamp" value="{e["at"]}"/>'
                          f'<string key="segment" value="{e["segment"]}"/></event>\n')
            out.write("</trace>\n")
        out.write("</log>\n")
    return sum(len(v) for v in traces.values())


def child(args: list[str], cwd: str | None = None) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of a command in a process of its own, measured by /usr/bin/time (a process forked
    from this one would count this process's memory as its own until it runs the command)."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, cwd=cwd)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed with exit status {proc.returncode}: {proc.stderr[-500:]}")
    return elapsed, int(proc.stderr.split()[-1]) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the fastest counts")
    ap.add_argument("--import-only", action="store_true", help="only the import (and its replay)")
    ap.add_argument("--only", metavar="WORD", help="only the analyses whose label contains WORD (and the replay)")
    ap.add_argument("--no-import", action="store_true", help="skip the import")
    ap.add_argument("--import-baseline", metavar="DIR", help="also time the import of another source tree (e.g. "
                    "`git archive HEAD monitor | tar -x -C DIR`), in turn with this one's")
    ap.add_argument("--xes-events", type=int, default=900_000, help="export the install orders among these first "
                    "events as XES (about 100 MB by default)")
    ap.add_argument("--events", type=int, default=1_000_000, help="the replay benchmark's file of this many events")
    ap.add_argument("--orders", type=int, default=100_000, help="... over this many orders")
    ap.add_argument("--data", default=str(ROOT / "bench" / "out"), help="where the benchmark files are kept")
    args = ap.parse_args()
    out = Path(args.data)
    path = out / f"replay-{args.events}-{args.orders}.jsonl"  # shared with replay_bench.py, made by its generator
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        print(f"generating {path}", flush=True)
        generate(path, args.events, args.orders)
    n = sum(1 for _ in path.open("rb"))
    policies, _ = build_policy_set([(f"{p['process']}.yaml", p) for p in POLICIES], CALENDARS)
    tighter, _ = build_policy_set([(f"{p['process']}.yaml", halved(p)) for p in POLICIES], CALENDARS)
    items = lambda: read_events(str(path))  # noqa: E731 - the source the commands build
    by_shard = file_by_shard(str(path))  # the backtest's
    shards = default_shards()  # as the command: one process per core
    print(f"{n:,} events, {os.cpu_count()} cores, {sys.implementation.name} {sys.version.split()[0]}; "
          f"fastest of {args.repeat} run(s) each", flush=True)
    if not args.import_only:
        base = best(1, lambda: replay_file(policies, str(path)))
        print(f"{'replay':<34} {base:7.2f} s {n / base:>9,.0f} events/s", flush=True)
    runs = [
        ("report --period week (Berlin)", lambda: period_report(policies, items, "week", "Europe/Berlin")),
        ("report --period day --by-segment", lambda: period_report(policies, items, "day", "UTC", by_segment=True)),
        (f"backtest ({shards} processes)", lambda: run_backtest(policies, tighter, items, by_shard, shards=shards)),
        ("backtest (one process)", lambda: run_backtest(policies, tighter, items, by_shard, shards=1)),
        ("backtest, two replays (2 processes)", lambda: backtest(policies, tighter, items)),
        ("recommend --target 0.9", lambda: recommend(policies, items, 0.9, 0.975, 60_000_000, 30)),
    ]
    for label, fn in [] if args.import_only else runs:
        if args.only and args.only not in label:
            continue
        times, bases = [], []
        for _ in range(args.repeat):  # in turn with a replay, so that both get the same share of a shared machine
            times.append(best(1, fn))
            bases.append(best(1, lambda: replay_file(policies, str(path))))
        t, b = min(times), min(bases)
        print(f"{label:<34} {t:7.2f} s {n / t:>9,.0f} events/s  {b / t:.2f} of the replay in turn with it "
              f"({n / b:,.0f} events/s)", flush=True)
    if args.no_import:
        return 0
    xes = out / f"import-install-{args.xes_events}.xes"
    jsonl = out / f"import-install-{args.xes_events}.jsonl"
    if not xes.exists():
        print(f"exporting the first {args.xes_events:,} events as XES -> {xes}", flush=True)
        export_xes(path, xes, args.xes_events)
    slamon = [sys.executable, "-m", "monitor.cli"]
    policy_dir = out / "policies"
    policy_dir.mkdir(exist_ok=True)
    for p in POLICIES:
        (policy_dir / f"{p['process']}.yaml").write_bytes(orjson.dumps(p))  # JSON is YAML
    (policy_dir / "calendars.yaml").write_bytes(orjson.dumps(CALENDARS))
    imported = [*slamon, "import", "xes", str(xes), "--process", "install", "--out"]
    runs_import, runs_base, runs_replay = [], [], []
    for _ in range(args.repeat):  # in turn, so that each gets the same share of a shared machine's load
        runs_import.append(child([*imported, str(jsonl)], cwd=str(ROOT)))
        if args.import_baseline:
            runs_base.append(child([*imported, str(jsonl) + ".baseline"], cwd=args.import_baseline))
        runs_replay.append(child([*slamon, "replay", "--policies", str(policy_dir), "--events", str(jsonl), "--json"],
                                 cwd=str(ROOT)))
    m = sum(1 for _ in jsonl.open("rb"))
    t_replay, rss_replay = min(runs_replay)
    size = xes.stat().st_size / 2**20
    for label, runs in (("import xes", runs_import), ("import xes, baseline tree", runs_base)):
        if runs:
            t_import, rss = min(runs)
            print(f"{label + ' (' + f'{size:,.0f} MB' + ')':<34} {t_import:7.2f} s {m / t_import:>9,.0f} events/s  "
                  f"{t_replay / t_import:.2f} of `slamon replay` of its output ({m / t_replay:,.0f} events/s); "
                  f"peak RSS {rss:,.0f} MiB (replay {rss_replay:,.0f} MiB), whole processes", flush=True)
    if runs_base and Path(str(jsonl) + ".baseline").read_bytes() != jsonl.read_bytes():
        print("the baseline tree's import wrote other events", flush=True)
    Path(str(jsonl) + ".baseline").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
