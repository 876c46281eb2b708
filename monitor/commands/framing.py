"""How the new commands are framed: a sub-command whose --help ends with an example, and whose problems are one
line on stderr and exit status 2 (a command raises `fail(prog, message)`; nothing else is caught)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


class Failed(Exception):
    """A problem already printed; the command exits 2."""


def exit_status(run: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], int]:
    """A command's function: `run(args)`, exit status 0, or 2 when it raised Failed (the problem printed)."""

    def command(args: argparse.Namespace) -> int:
        try:
            run(args)
        except Failed:
            return 2
        return 0

    return command


def add_command(sub: Any, name: str, help: str, description: str, example: str,
                run: Callable[[argparse.Namespace], None]) -> argparse.ArgumentParser:
    """A sub-command whose --help ends with `example` (kept as written), running `run` (see exit_status)."""
    p = sub.add_parser(name, help=help, description=description, epilog=example,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=exit_status(run))
    return p


def fail(prog: str, message: str) -> Failed:
    print(f"{prog}: {message}", file=sys.stderr)
    return Failed(message)
