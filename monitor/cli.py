"""The `slamon` command: one sub-command per module, each registering itself via `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, help) of every sub-command; modules are imported lazily so `slamon --help` stays fast
# and a sub-command's heavy dependencies (Faust, aiokafka) load only when it runs.
COMMANDS: dict[str, str] = {
    "replay": "monitor.replay",
    "policy": "monitor.policy_cli",
    "topics": "monitor.topics",
    "stack": "monitor.localstack.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slamon",
        description="Kafka-native SLA monitor: commitments, tolerances and the seven states of node runs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
