"""The `slamon` command: one sub-command per module, each registering itself via `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__

# Sub-command -> module. Only the module of the command being run is imported, so `slamon replay` never loads
# Faust or aiokafka; `slamon --help` imports them all to list them.
COMMANDS: dict[str, str] = {
    "replay": "monitor.commands.replay",
    "policy": "monitor.commands.policy",
    "topics": "monitor.commands.topics",
    "worker": "monitor.commands.worker",
    "demo": "monitor.commands.demo",
    "board": "monitor.commands.board",
    "notifier": "monitor.commands.notifier",
    "stack": "monitor.localstack.cli",
    "rules": "monitor.commands.rules",
    "report": "monitor.commands.report",
    "backtest": "monitor.commands.backtest",
    "recommend": "monitor.commands.recommend",
    "import": "monitor.commands.importer",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slamon",
        description="Kafka-native SLA monitor: commitments, tolerances and the seven states of node runs.",
    )
    parser.add_argument("--version", action="version", version=f"slamon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `slamon ... | head`: the reader has gone, which is not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
