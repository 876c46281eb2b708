"""`slamon rules generate`: --check reports stale files (exit 1), bad policies exit 2, help."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main as slamon

DEMO = Path(__file__).resolve().parents[3] / "deploy" / "demo" / "policies"


def test_check_reports_a_stale_file(tmp_path, capsys):
    assert slamon(["rules", "generate", "--policies", str(DEMO), "--out", str(tmp_path)]) == 0
    assert slamon(["rules", "generate", "--policies", str(DEMO), "--out", str(tmp_path), "--check"]) == 0
    assert slamon(["rules", "generate", "--policies", str(DEMO), "--out", str(tmp_path), "--check",
                   "--min-runs", "3"]) == 1
    assert "out of date" in capsys.readouterr().err


def test_bad_policies_exit_2(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("process: p\nnodes:\n  n: {commitment: 2h, tolerance: 1h}\n")
    assert slamon(["rules", "generate", "--policies", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "tolerance" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [["rules", "--help"], ["rules", "generate", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        slamon(argv)
    assert exc.value.code == 0
    assert "usage: slamon rules" in capsys.readouterr().out
