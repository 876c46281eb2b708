from monitor.cli import main as slamon

from .test_replay import CALENDARS, HELPDESK, REPAIR, sample_policies


def policy_dir(tmp_path, rich=False):
    return sample_policies(tmp_path, rich)


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


def test_policy_check_prints_calendars_thresholds_statuses_and_the_segment_matrix(tmp_path, capsys):
    pol = policy_dir(tmp_path, rich=True)
    assert slamon(["policy", "check", str(pol)]) == 0
    lines = [" ".join(x.split()) for x in capsys.readouterr().out.splitlines()]
    # graded early warnings as `p%=instant` (25, 50 and 87.5 % of the commitment), the calendar of each row
    for row in ["triage default 2h 4h late l1 25%=30m 50%=1h 87.5%=1h45m",  # the node's calendar
                "triage p1 16m 1h night l1 25%=4m 50%=8m 87.5%=14m",  # the segment's
                "fix p1 8h 1d night - 25%=2h 50%=4h 87.5%=7h",  # the segment's, on a node it does not override
                "verify p1 40m 40m late - 25%=10m 50%=20m 87.5%=35m",  # segment-and-node
                "fix vip 4h 1d weekend - 25%=1h 50%=2h 87.5%=3h30m",
                "verify enterprise 40m 2h office - 25%=10m 50%=20m 87.5%=35m",  # the process's
                "__order__ default 2d 4d office desk 25%=12h 50%=1d 87.5%=1d18h",
                "__order__ numeric 2d 4d weekend desk 25%=12h 50%=1d 87.5%=1d18h"]:  # the order in its segment's
        assert f"helpdesk 2 {row}" in lines, row
    assert ("statuses: 'New' runs triage; 'Working' runs fix; 'Waiting' pauses fix; 'Verify' runs verify; "
            "'Closed' ends the order (completed); 'Dropped' ends the order (cancelled)") in lines
    start = lines.index("attrs.priority attrs.cat segment attrs.level -> segment")
    matrix = lines[start + 1:start + 1 + 2 * 3 * 3 * 2]
    assert all("->" in row for row in matrix) and "->" not in (lines[start + 37:] or [""])[0]
    for row in ["P1 outage gold 3 -> p1", "P1 security * * -> p1", "P1 * gold * -> vip", "* outage platinum 3 -> vip",
                "* * * 3 -> numeric", "P1 * * * -> (as given)", "* * * * -> (as given)"]:  # first match in file order
        assert row in matrix, row
    assert sum(line.startswith("segments chosen by match") for line in lines) == 1  # only helpdesk has match:


def test_policy_check_caps_a_large_matrix(tmp_path, capsys):
    pol = policy_dir(tmp_path)
    values = ", ".join(f"v{i}" for i in range(20))
    (pol / "wide.yaml").write_text("process: wide\nnodes: {n: {commitment: 1h, tolerance: 2h}}\nsegments:\n"
                                   f"  s:\n    match: {{attrs.a: [{values}], attrs.b: [{values}]}}\n")
    assert slamon(["policy", "check", str(pol)]) == 0
    out = capsys.readouterr().out
    assert "... and 241 more combinations" in out  # 21 x 21 = 441 combinations, 200 shown


def test_policy_check_rejects_the_new_fields_with_file_field_and_problem(tmp_path, capsys):
    pol = policy_dir(tmp_path, rich=True)
    (pol / "helpdesk.yaml").write_text(HELPDESK.replace("[0.875, 0.25, 0.5]", "[0.875, 0.25, 0.25]")
                                       .replace("{pause: fix}", "{pause: nowhere}"))
    assert slamon(["policy", "check", str(pol)]) == 2
    err = capsys.readouterr().err
    assert f"{pol / 'helpdesk.yaml'}: early_warning: 0.25 is given twice: the thresholds must be distinct" in err
    assert f"{pol / 'helpdesk.yaml'}: statuses.Waiting.pause: unknown node 'nowhere' (not under nodes)" in err
