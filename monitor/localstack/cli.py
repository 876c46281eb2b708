"""`slamon stack fetch|up|down|status` and `python -m monitor.localstack fetch|up|down|status`.

Imports of the launcher (and of aiokafka / redis through it) happen when an action runs, so that
`slamon --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = ("Local single-node Apache Kafka (KRaft, from Maven Central jars) and Redis on free loopback ports. "
               "State, logs and data in .stack/ (or $SLAMON_STACK_DIR), jars in .cache/ (or $SLAMON_CACHE_DIR).")


def _add_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", metavar="PATH", default=None,
                   help="state directory of the stack (default: $SLAMON_STACK_DIR, else .stack/ at the repo root)")


def add_actions(parser: argparse.ArgumentParser) -> None:
    """Add the fetch/up/down/status actions to `parser` (shared by `slamon stack` and `-m monitor.localstack`)."""
    actions = parser.add_subparsers(dest="stack_action", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("fetch", help="resolve the pinned Kafka jars from Maven Central into the cache (once)",
                           description="Resolve org.apache.kafka:kafka_2.13 (version pinned in deploy/local/pom.xml) "
                                       "and its runtime with Maven into .cache/kafka/<version>/libs, then format a "
                                       "template log dir and dump a class-data-sharing archive for fast broker "
                                       "starts. A no-op when already done.")
    p.set_defaults(func=cmd_fetch)

    p = actions.add_parser("up", help="start Kafka and Redis, reuse the running stack or restart what of it died",
                           description="Start a single-node Kafka (broker+controller) and Redis on free 127.0.0.1 "
                                       "ports, or reuse the stack already recorded in the state dir: what is "
                                       "healthy is left running, what died (or does not answer) is restarted on "
                                       "its recorded ports and data (Kafka's topics and offsets, Redis' AOF). A "
                                       "recorded port taken by another process is an error: nothing is wiped. "
                                       "Writes <state dir>/env with SLAMON_KAFKA_BOOTSTRAP and SLAMON_REDIS_URL. "
                                       "With SLAMON_STACK_SECURITY=sasl_ssl (SCRAM-SHA-512 over TLS) or mtls "
                                       "(client certificates) Kafka and Redis accept only secured clients, and the "
                                       "env file holds every SLAMON_KAFKA_* and SLAMON_REDIS_* variable they need.")
    _add_dir(p)
    p.add_argument("--fresh", action="store_true",
                   help="discard the recorded stack and its data first: a new stack on new ports")
    p.add_argument("--redis-aof", action=argparse.BooleanOptionalAction, default=None,
                   help="run Redis with the append-only file on (fsync every second) or off; a running Redis "
                        "is switched and keeps its data (default: as recorded; off for a new stack)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="how long to wait for Kafka to answer (default: $SLAMON_KAFKA_START_TIMEOUT or 120)")
    p.set_defaults(func=cmd_up)

    p = actions.add_parser("down", help="stop everything the stack started and delete its data",
                           description="Stop Kafka and Redis of the stack (SIGTERM, SIGKILL after a deadline), "
                                       "forget it and delete its data (kafka/ and redis/ in the state dir). "
                                       "Nothing running is not an error.")
    _add_dir(p)
    p.add_argument("--keep-data", action="store_true",
                   help="only stop the servers: the next `up` restarts them on their ports with their data")
    p.set_defaults(func=cmd_down)

    p = actions.add_parser("status", help="show the stack and check it answers (exit 1 if not healthy)",
                           description="Print the recorded stack and whether Kafka answers a metadata request and "
                                       "Redis answers PING. Exit status 0 when healthy, 1 otherwise.")
    _add_dir(p)
    p.add_argument("--json", action="store_true", help="print the state and problems as JSON")
    p.set_defaults(func=cmd_status)


def register(subparsers) -> None:
    """The `slamon stack` sub-command."""
    p = subparsers.add_parser("stack", help="local Kafka + Redis for development and tests (fetch/up/down/status)",
                              description=DESCRIPTION)
    add_actions(p)


def _fail(e: Exception) -> int:
    print(f"stack: error: {e}", file=sys.stderr)
    return 1


def cmd_fetch(args: argparse.Namespace) -> int:
    from .kafka_jars import jars_ready, kafka_version, libs_dir
    from .kafka_server import runtime
    from .procs import StackError

    try:
        had_jars = jars_ready()
        rt = runtime(retry_failed=True)
    except StackError as e:
        return _fail(e)
    if had_jars:
        print(f"stack: Kafka {kafka_version()} jars already in {libs_dir()}", file=sys.stderr)
    if rt.cds_archive is None and rt.template is not None:
        print("stack: (no CDS archive: brokers start a little slower)", file=sys.stderr)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from .procs import StackError
    from .stack import up

    try:
        info = up(args.dir, redis_aof=args.redis_aof, timeout=args.timeout, fresh=args.fresh)
    except StackError as e:
        return _fail(e)
    except KeyboardInterrupt:
        print("stack: interrupted; what was started has been stopped", file=sys.stderr)
        return 130
    for k, v in info.env.items():
        print(f"{k}={v}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from .procs import StackError
    from .stack import down

    try:
        down(args.dir, keep_data=args.keep_data)
    except StackError as e:
        return _fail(e)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from . import paths
    from .stack import status
    from .state import ENV_FILE

    state, problems = status(args.dir)
    sdir = paths.stack_dir(args.dir)
    if args.json:
        print(json.dumps({"state_dir": str(sdir), "state": state, "healthy": not problems, "problems": problems},
                         indent=1))
        return 0 if not problems else 1
    if state is None:
        print(f"no stack recorded in {sdir}")
        return 1
    k, r = state.get("kafka", {}), state.get("redis", {})
    print(f"state dir: {sdir}")
    print(f"kafka: {k.get('version')} on 127.0.0.1:{k.get('port')} (controller {k.get('controller_port')}), "
          f"pid {k.get('pid')}, cluster id {k.get('cluster_id')}, log {k.get('log')}")
    print(f"redis: 127.0.0.1:{r.get('port')}, pid {r.get('pid')}, AOF {'on' if r.get('aof') else 'off'}")
    print(f"security: {state.get('security') or 'none'}")
    print(f"env:   {sdir / ENV_FILE}")
    if problems:
        print("NOT healthy: " + "; ".join(problems))
        return 1
    print("healthy")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.localstack", description=DESCRIPTION)
    add_actions(parser)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)
