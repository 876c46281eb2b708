"""`slamon import`: the sub-command and its help (the import itself: tests/unit/importers/test_xes.py)."""

from __future__ import annotations

import pytest

from monitor.cli import main as slamon


def test_help_has_examples_and_the_mapping(capsys):
    with pytest.raises(SystemExit) as exit_:
        slamon(["import", "xes", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "slamon import xes BPI_Challenge_2017.xes.gz" in out and "--mode sojourn" in out
    assert "ate_abort / pi_abort -> node_cancelled" in out


def test_a_format_is_required(capsys):
    with pytest.raises(SystemExit) as exit_:
        slamon(["import"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        slamon(["import", "xes", "log.xes", "--mode", "weekly"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
