"""The worker's Faust app takes its configuration from Settings (SLAMON_* variables) only."""

from __future__ import annotations

from monitor.settings import Settings


def test_faust_ignores_its_own_unprefixed_environment_variables(monkeypatch):
    from monitor.stream.app import WorkerApp

    # what a Kubernetes service link `web`, a PaaS or a stray shell export would set
    for name, value in {"WEB_PORT": "tcp://10.0.0.1:80", "WEB_HOST": "10.0.0.1", "BROKER_URL": "kafka://elsewhere:1",
                        "DATADIR": "/elsewhere", "CONSUMER_GROUP_INSTANCE_ID": "someone-else"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env({"SLAMON_STORE": "memory://", "SLAMON_APP_ID": "env-test", "SLAMON_WEB_PORT": "6123",
                                  "SLAMON_KAFKA_BOOTSTRAP": "127.0.0.1:9999", "SLAMON_DATA_DIR": "/tmp/slamon-env"})
    conf = WorkerApp(settings, 2).app.conf
    assert conf.web_port == 6123 and conf.web_host == settings.web_host
    assert [str(u) for u in conf.broker] == ["slamon://127.0.0.1:9999"]
    assert str(conf.datadir).startswith("/tmp/slamon-env")
    assert conf.consumer_group_instance_id is None


def test_the_static_membership_id_is_passed_to_the_consumer():
    from monitor.stream.app import WorkerApp

    settings = Settings.from_env({"SLAMON_STORE": "memory://", "SLAMON_APP_ID": "static-test",
                                  "SLAMON_GROUP_INSTANCE_ID": "slamon-worker-0"})
    assert WorkerApp(settings, 2).app.conf.consumer_group_instance_id == "slamon-worker-0"


def test_the_faust_worker_has_no_terminal_spinner_at_any_log_level():
    # the spinner wrote "\x1b[?25l" and its frames into the worker's output, which must be JSON lines only
    from monitor.stream.app import WorkerApp, faust_worker

    for level in ("warning", "error", "info"):
        settings = Settings.from_env({"SLAMON_STORE": "memory://", "SLAMON_APP_ID": f"spin-{level}",
                                      "SLAMON_LOG_LEVEL": level})
        assert faust_worker(WorkerApp(settings, 2).app, settings).spinner is None
