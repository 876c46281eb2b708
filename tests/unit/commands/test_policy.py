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


def test_policy_check_reports_the_problems_and_the_warnings_with_file_and_line(tmp_path, capsys):
    pol = policy_dir(tmp_path)
    (pol / "repair.yaml").write_text(REPAIR.replace("version: 4", "version: 4\ncolour: blue")
                                     .replace("  fix: {commitment: 1d", "  diagnose: {commitment: 1h, tolerance: 2h}\n"
                                                                        "  fix: {commitment: 1d"))
    (pol / "onboarding.yml").write_text("process: onboarding\nnodes: {call: [\n")
    assert slamon(["policy", "check", str(pol)]) == 2
    err = capsys.readouterr().err
    assert f"{pol / 'repair.yaml'}: nodes.diagnose: duplicate key (line 9, first on line 8)" in err
    assert f"{pol / 'onboarding.yml'}: line 3, column 1: not readable YAML" in err and "<unicode string>" not in err
    assert f"slamon policy check: warning: {pol / 'repair.yaml'}: colour: unknown field, ignored" in err


def test_a_bad_time_zone_is_the_only_problem_reported_for_its_calendar(tmp_path, capsys):
    pol = policy_dir(tmp_path)
    (pol / "calendars.yaml").write_text(CALENDARS.replace("Europe/Berlin", "Europe/Atlantis"))
    assert slamon(["policy", "check", str(pol)]) == 2
    err = capsys.readouterr().err
    assert "unknown time zone 'Europe/Atlantis'" in err and "unknown calendar" not in err
