"""The framing of the new commands: one line on stderr and exit status 2 for a problem, 0 otherwise."""

from __future__ import annotations

import argparse

from monitor.commands.framing import add_command, exit_status, fail


def test_a_failure_is_one_line_and_exit_2(capsys):
    def run(args):
        raise fail("slamon x", f"--flag: {args.flag} is not usable")

    assert exit_status(run)(argparse.Namespace(flag="v")) == 2
    assert capsys.readouterr().err == "slamon x: --flag: v is not usable\n"
    assert exit_status(lambda args: None)(argparse.Namespace()) == 0


def test_the_example_is_kept_as_written(capsys):
    parser = argparse.ArgumentParser(prog="slamon")
    sub = parser.add_subparsers()
    add_command(sub, "x", "help", "description", "example:\n  slamon x --flag   # aligned\n", lambda args: None)
    try:
        parser.parse_args(["x", "--help"])
    except SystemExit:
        pass
    assert "example:\n  slamon x --flag   # aligned\n" in capsys.readouterr().out
