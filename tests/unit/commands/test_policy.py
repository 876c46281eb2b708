from monitor.cli import main as slamon

from .test_replay import CALENDARS, ONBOARD, REPAIR


def policy_dir(tmp_path):
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "repair.yaml").write_text(REPAIR)
    (pol / "onboarding.yml").write_text(ONBOARD)
    (pol / "calendars.yaml").write_text(CALENDARS)
    return pol


def test_policy_check_prints_effective_limits(tmp_path, capsys):
    pol = policy_dir(tmp_path)
    assert slamon(["policy", "check", str(pol)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if " fix " in x and "gold" in x)
    assert "5h" in line and "2d" in line and "4h" in line  # commitment 5h, tolerance 2d, early warning 0.8 x 5h
