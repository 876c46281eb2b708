from pathlib import Path

import pytest

from monitor.core.policies import PolicyError, build_policy_set, load_policy_dir

GOOD = """
process: broadband_install
version: 3
calendar: cn-office
early_warning: 0.8
target: 0.95
order: {commitment: 5d, tolerance: 7d, owner: delivery-desk}
nodes:
  site_survey:  {commitment: 4h, tolerance: 8h, owner: field-ops}
  installation: {commitment: 1d12h, tolerance: 3d, owner: install-team}
segments:
  enterprise:
    site_survey: {commitment: 2h, tolerance: 4h}
"""
CALENDARS = """
calendars:
  cn-office:
    timezone: Asia/Shanghai
    hours:
      mon: ["09:00-12:00", "13:00-18:00"]
      tue: ["09:00-12:00", "13:00-18:00"]
    holidays: ["2026-10-01", "2026-10-02"]
"""
H = 3600 * 1_000_000


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_contract_example_loads_with_effective_limits(tmp_path):
    ps, warnings = load_policy_dir(write(tmp_path, {"broadband.yaml": GOOD, "calendars.yaml": CALENDARS}))
    p = ps.get("broadband_install")
    assert warnings == []
    assert p.version == 3 and p.calendar_name == "cn-office" and p.target == 0.95
    assert p.limits("site_survey", "enterprise").commitment == 2 * H
    assert p.limits("site_survey", "enterprise").owner == "field-ops"  # field by field
    assert p.limits("site_survey", "retail").commitment == 4 * H
    assert p.limits("installation", "enterprise").tolerance == 72 * H
    assert p.limits("site_survey", "default").approaching == round(0.8 * 4 * H)
    assert p.order.commitment == 120 * H and p.order.owner == "delivery-desk"
    assert p.segment_label("enterprise") == "enterprise" and p.segment_label("gold") == "default"


@pytest.mark.parametrize(
    ("patch", "field", "problem"),
    [
        (("tolerance: 8h, owner: field-ops", "tolerance: 2h, owner: field-ops"), "nodes.site_survey.tolerance", "less than commitment"),
        (("commitment: 4h", "commitment: 0s"), "nodes.site_survey.commitment", "positive"),
        (("commitment: 4h", "commitment: four hours"), "nodes.site_survey.commitment", "unreadable duration"),
        (("calendar: cn-office", "calendar: mars"), "calendar", "unknown calendar"),
        (("early_warning: 0.8", "early_warning: 1.5"), "early_warning", "fraction"),
        (("version: 3", "version: three"), "version", "integer"),
        (("site_survey: {commitment: 2h, tolerance: 4h}", "site_survey: {tolerance: 1h}"), "segments.enterprise.site_survey.tolerance", "less than commitment"),
        (("    site_survey: {commitment: 2h", "    nosuch: {commitment: 2h"), "segments.enterprise.nosuch", "unknown node"),
    ],
)
def test_bad_policies_name_file_field_and_problem(tmp_path, patch, field, problem):
    text = GOOD.replace(*patch)
    assert text != GOOD
    d = write(tmp_path, {"broadband.yaml": text, "calendars.yaml": CALENDARS})
    with pytest.raises(PolicyError) as err:
        load_policy_dir(d)
    msg = str(err.value)
    assert str(d / "broadband.yaml") in msg and field in msg and problem in msg


def test_bad_calendar_and_yaml_are_reported(tmp_path):
    d = write(tmp_path, {"a.yaml": "process: a\nnodes: {x: {commitment: 1h, tolerance: 1h}\n",
                         "calendars.yaml": CALENDARS.replace("Asia/Shanghai", "Nowhere/City")})
    with pytest.raises(PolicyError) as err:
        load_policy_dir(d)
    text = str(err.value)
    assert f"{d / 'a.yaml'}: line 3, column 1: not readable YAML: while parsing a flow mapping (line 2, column 8)" in text
    assert "calendars.yaml: calendars.cn-office.timezone: unknown time zone" in text


def test_a_calendar_without_hours_says_so():
    doc = {"calendars": {"closed": {"timezone": "Europe/Berlin", "hours": {}}}}
    with pytest.raises(PolicyError) as err:
        build_policy_set([("x.yaml", {"process": "x", "nodes": {"n": {"commitment": 5, "tolerance": 9}}})], doc)
    assert "calendars.yaml: calendars.closed.hours: no working hours" in str(err.value)


def test_duplicate_process_and_empty_directory(tmp_path):
    with pytest.raises(PolicyError, match="no policy files"):
        load_policy_dir(tmp_path)
    write(tmp_path, {"a.yaml": "process: p\nnodes: {x: {commitment: 1h, tolerance: 1h}}\n",
                     "b.yaml": "process: p\nnodes: {x: {commitment: 1h, tolerance: 1h}}\n"})
    with pytest.raises(PolicyError, match="b.yaml: process: 'p' is also defined in"):
        load_policy_dir(tmp_path)


def test_unknown_fields_are_warned_not_fatal():
    _, warnings = build_policy_set([("x.yaml", {"process": "x", "descr": "hi",
                                                "nodes": {"n": {"commitment": 5, "tolerance": 9, "sla": 1}}})])
    assert [str(w) for w in warnings] == ["x.yaml: descr: unknown field, ignored",
                                          "x.yaml: nodes.n.sla: unknown field, ignored"]


def _problems(d: Path) -> list[str]:
    with pytest.raises(PolicyError) as err:
        load_policy_dir(d)
    return [str(p) for p in err.value.problems]


def test_a_key_given_twice_is_rejected_with_its_path_not_silently_the_last(tmp_path):
    text = GOOD.replace("  installation:", "  site_survey: {commitment: 9h, tolerance: 9h}\n  installation:")
    d = write(tmp_path, {"broadband.yaml": text, "calendars.yaml": CALENDARS})
    assert _problems(d) == [f"{d / 'broadband.yaml'}: nodes.site_survey: duplicate key (line 10, first on line 9): "
                            "YAML would silently keep the last"]
    (d / "calendars.yaml").write_text(CALENDARS.replace("    holidays:", "    timezone: UTC\n    holidays:"))
    assert f"{d / 'calendars.yaml'}: calendars.cn-office.timezone: duplicate key (line 8, first on line 4): " \
           "YAML would silently keep the last" in _problems(d)


@pytest.mark.parametrize(
    ("text", "where"),
    [("process: a\nnodes: {x: {commitment: 1h, tolerance: 1h}\n",
      "line 3, column 1: not readable YAML: while parsing a flow mapping (line 2, column 8); expected ',' or '}'"),
     ("process: a\nholidays: [2026-02-30]\n", "line 2, column 12: not readable YAML: day is out of range"),
     ("process: a\n\x07\n", "line 2: not readable YAML: special characters are not allowed"),
     ("process: a\nx: &a [*a]\n", "x[0]: an alias that contains itself"),
     ("process: a\nx: " + "[" * 70 + "]" * 70 + "\n", "nested more than 64 levels deep"),
     ("process: a\nx: " + "[" * 3000 + "]" * 3000 + "\n", "(file): not readable YAML"),
     ("process: a\n---\nprocess: b\n", "not readable YAML: expected a single document")],
)
def test_unreadable_yaml_names_the_file_and_the_line_never_a_placeholder_or_a_traceback(tmp_path, text, where):
    (problem,) = _problems(write(tmp_path, {"a.yaml": text}))
    assert problem.startswith(str(tmp_path / "a.yaml") + ": ") and where in problem, problem
    assert "<unicode string>" not in problem


def test_a_policy_file_that_is_not_utf8_says_where(tmp_path):
    (tmp_path / "a.yaml").write_bytes(b"process: a\nowner: caf\xe9\n")
    assert _problems(tmp_path) == [f"{tmp_path / 'a.yaml'}: line 2: not UTF-8 text (byte 0xe9)"]


def test_a_calendar_with_a_bad_time_zone_is_one_problem_not_also_unknown_on_each_policy(tmp_path):
    d = write(tmp_path, {"broadband.yaml": GOOD, "other.yaml": GOOD.replace("broadband_install", "other"),
                         "calendars.yaml": CALENDARS.replace("Asia/Shanghai", "Mars/Olympus")})
    assert _problems(d) == [f"{d / 'calendars.yaml'}: calendars.cn-office.timezone: unknown time zone 'Mars/Olympus'"]
    (d / "calendars.yaml").write_text("calendars: {cn-office: [\n")  # unreadable: its calendars are not "unknown"
    (only,) = _problems(d)
    assert only.startswith(f"{d / 'calendars.yaml'}: line 2")
    (d / "calendars.yaml").write_text("calendars: [cn-office]\n")
    assert _problems(d) == [f"{d / 'calendars.yaml'}: calendars: expected a mapping `calendars:` of calendar names"]
    (d / "calendars.yaml").write_text(CALENDARS)
    (d / "other.yaml").write_text(GOOD.replace("broadband_install", "other").replace("cn-office", "nowhere"))
    assert _problems(d) == [f"{d / 'other.yaml'}: calendar: unknown calendar 'nowhere' (not in calendars.yaml)"]


def test_warnings_come_with_the_problems_when_the_load_fails(tmp_path):
    d = write(tmp_path, {"broadband.yaml": GOOD.replace("target: 0.95", "target: 0.95\ncolour: blue")
                         .replace("commitment: 4h", "commitment: soon"), "calendars.yaml": CALENDARS})
    with pytest.raises(PolicyError) as err:
        load_policy_dir(d)
    assert [p.field for p in err.value.problems] == ["nodes.site_survey.commitment"]
    assert [str(w) for w in err.value.warnings] == [f"{d / 'broadband.yaml'}: colour: unknown field, ignored"]
