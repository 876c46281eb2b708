"""Configuration: every SLAMON_* value checked, with the variable and the problem named."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.cli import main as slamon
from monitor.settings import SETTINGS, Settings, SettingsError


def test_the_defaults_are_valid():
    s = Settings.from_env({})
    assert s.kafka_bootstrap == "127.0.0.1:9092" and s.max_state_bytes == 524288 and s.log_level == "info"


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("SLAMON_LOG_LEVEL", "verbose", "use one of debug, info, warning, error"),
    ("SLAMON_PARTITIONS", "0", "must be positive"),
    ("SLAMON_PARTITIONS", "six", "is not a valid int"),
    ("SLAMON_TICK_INTERVAL", "-1", "must be positive"),
    ("SLAMON_MAX_STATE_BYTES", "10", "must be at least 1024"),
    ("SLAMON_STORE", "redis://", "use rocksdb:// or memory://"),
    ("SLAMON_CLOSED_RETENTION", "-5", "must not be negative"),
])
def test_an_invalid_value_is_named_with_its_problem(name, value, problem):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: value})
    assert name in str(err.value) and problem in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"SLAMON_PARTITIONS": "0", "SLAMON_LOG_LEVEL": "loud"})
    assert "SLAMON_PARTITIONS" in str(err.value) and "SLAMON_LOG_LEVEL" in str(err.value)


def test_a_command_with_a_bad_setting_exits_2_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("SLAMON_LOG_LEVEL", "verbose")
    assert slamon(["worker"]) == 2
    assert "SLAMON_LOG_LEVEL='verbose'" in capsys.readouterr().err


def test_every_setting_is_listed_in_the_help(capsys):
    with pytest.raises(SystemExit):
        slamon(["worker", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name, _, _ in SETTINGS)


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        slamon(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"slamon {__version__}"


def test_the_worker_exports_its_build(monkeypatch):
    from monitor.stream.metrics import MonitorMetrics

    m = MonitorMetrics(CollectorRegistry())
    assert m.registry.get_sample_value("slamon_build_info", {"version": __version__,
                                                             "python": __import__("platform").python_version()}) == 1


# ------------------------------------------------------------------------- secrets, files and security

NOT_PEM = __file__  # a readable file that holds no certificate


def test_any_setting_can_be_read_from_a_file(tmp_path):
    (tmp_path / "password").write_text("s3cret-pass\n")
    (tmp_path / "token").write_text("  tok-en \n")
    (tmp_path / "url").write_text("redis://:pw@redis:6380/2\n")
    (tmp_path / "partitions").write_text("12")
    s = Settings.from_env({"SLAMON_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "SLAMON_KAFKA_SASL_USERNAME": "u",
                           "SLAMON_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "password"),
                           "SLAMON_API_TOKEN_FILE": str(tmp_path / "token"),
                           "SLAMON_REDIS_URL_FILE": str(tmp_path / "url"),
                           "SLAMON_PARTITIONS_FILE": str(tmp_path / "partitions")})
    assert (s.kafka_sasl_password, s.api_token, s.redis_url, s.partitions) == (
        "s3cret-pass", "tok-en", "redis://:pw@redis:6380/2", 12)
    assert s.kafka_security_protocol == "SASL_PLAINTEXT" and s.kafka_sasl_mechanism == "PLAIN"


def test_a_value_and_its_file_together_or_an_unreadable_file_are_named(tmp_path):
    (tmp_path / "token").write_text("x")
    with pytest.raises(SettingsError, match="both SLAMON_API_TOKEN and SLAMON_API_TOKEN_FILE are set"):
        Settings.from_env({"SLAMON_API_TOKEN": "y", "SLAMON_API_TOKEN_FILE": str(tmp_path / "token")})
    with pytest.raises(SettingsError, match="SLAMON_API_TOKEN_FILE='/nonexistent/t': cannot read it"):
        Settings.from_env({"SLAMON_API_TOKEN_FILE": "/nonexistent/t"})


def test_secrets_stay_out_of_repr_and_error_messages():
    s = Settings.from_env({"SLAMON_API_TOKEN": "tok-1234", "SLAMON_REDIS_URL": "redis://:redis-pw@h:1/0",
                           "SLAMON_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "SLAMON_KAFKA_SASL_USERNAME": "u",
                           "SLAMON_KAFKA_SASL_PASSWORD": "kafka-pw"})
    assert not {"tok-1234", "redis-pw", "kafka-pw"} & set(repr(s).replace("'", " ").split())
    assert "pw" not in repr(s) and "tok-1234" not in repr(s)
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"SLAMON_REDIS_URL": "http://user:redis-pw@h:1/0", "SLAMON_API_TOKEN": "tok-1234",
                           "SLAMON_KAFKA_SASL_PASSWORD": "kafka-pw"})
    text = str(err.value)
    assert "SLAMON_REDIS_URL='http://user:***@h:1/0'" in text and "SLAMON_KAFKA_SASL_PASSWORD is set" in text
    assert "redis-pw" not in text and "kafka-pw" not in text


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
    ("rediss://user:p%40ss@h/1", "rediss://user:***@h/1"),
    ("redis://h:6379/0?password=pw&db=2", "redis://h:6379/0?password=***&db=2"),
    ("redis://h:6379/0", "redis://h:6379/0"),
    ("http://am:9093", "http://am:9093"),
    ("", ""),
])
def test_redact_url(url, shown):
    from monitor.settings import redact_url

    assert redact_url(url) == shown


@pytest.mark.parametrize(("env", "problem"), [
    ({"SLAMON_KAFKA_SECURITY_PROTOCOL": "TLS"}, "use one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ({"SLAMON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLAMON_KAFKA_SASL_USERNAME": "u",
      "SLAMON_KAFKA_SASL_PASSWORD": "p", "SLAMON_KAFKA_SASL_MECHANISM": "GSSAPI"},
     "SLAMON_KAFKA_SASL_MECHANISM=GSSAPI: use one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
    ({"SLAMON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "SLAMON_KAFKA_SASL_USERNAME is needed with"),
    ({"SLAMON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLAMON_KAFKA_SASL_USERNAME": "u"},
     "SLAMON_KAFKA_SASL_PASSWORD is needed with SLAMON_KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
    ({"SLAMON_KAFKA_SASL_USERNAME": "u"}, "SLAMON_KAFKA_SASL_USERNAME is set but SLAMON_KAFKA_SECURITY_PROTOCOL="
                                          "PLAINTEXT does not use it"),
    ({"SLAMON_KAFKA_SSL_CAFILE": NOT_PEM}, "SLAMON_KAFKA_SSL_CAFILE is set but SLAMON_KAFKA_SECURITY_PROTOCOL="
                                                "PLAINTEXT does not use TLS"),
    ({"SLAMON_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAMON_KAFKA_SSL_KEYFILE": NOT_PEM},
     "SLAMON_KAFKA_SSL_KEYFILE is set without SLAMON_KAFKA_SSL_CERTFILE"),
    ({"SLAMON_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAMON_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
     "SLAMON_KAFKA_SSL_CAFILE='/nonexistent/ca.pem': No such file or directory"),
    ({"SLAMON_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAMON_KAFKA_SSL_CAFILE": NOT_PEM},
     "SLAMON_KAFKA_SSL_CAFILE: cannot load the certificates or key"),
    ({"SLAMON_REDIS_SSL_CAFILE": NOT_PEM}, "SLAMON_REDIS_SSL_CAFILE is set but SLAMON_REDIS_URL does not use "
                                                   "TLS (rediss://)"),
    ({"SLAMON_REDIS_URL": "rediss://h:1/0", "SLAMON_REDIS_SSL_CAFILE": NOT_PEM},
     "SLAMON_REDIS_SSL_CAFILE: cannot load the certificates or key"),
    ({"SLAMON_REDIS_URL": "127.0.0.1:6379"}, "use redis://, rediss://, unix://"),
    ({"SLAMON_API_TOKEN": "to\udcffken"}, "SLAMON_API_TOKEN='<hidden>': use UTF-8 text"),
])
def test_security_settings_that_do_not_fit_are_named(env, problem):
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert problem in str(err.value)


def test_the_help_lists_the_security_variables_and_the_file_convention_but_no_value(monkeypatch, capsys):
    monkeypatch.setenv("SLAMON_KAFKA_SASL_PASSWORD", "kafka-pw-4711")
    monkeypatch.setenv("SLAMON_API_TOKEN", "token-4711")
    with pytest.raises(SystemExit):
        slamon(["board", "--help"])
    out = capsys.readouterr().out
    assert "SLAMON_KAFKA_SECURITY_PROTOCOL" in out and "SLAMON_REDIS_SSL_CAFILE" in out and "<NAME>_FILE" in out
    assert "4711" not in out
