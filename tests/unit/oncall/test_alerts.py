"""The notifier: the alert of a breach (expected values written from the rules in notifier.py's docstring), and
`Notifier.handle` / `resend` against a real Redis with the HTTP post replaced by a recorder."""

from __future__ import annotations

import re
import time
from datetime import datetime

import orjson
import pytest

from monitor.oncall import keys
from monitor.oncall.alerts import AlertmanagerDown, AlertsRejected, alert_for, post_alerts
from monitor.oncall.notifier import Notifier

ENDS = "2024-06-03T09:00:00Z"


def warning(kind: str, crossed_at: str = "2024-06-03T08:00:02Z", **over) -> dict:
    w = {"warning_id": f"o-1:n:2:{kind}", "kind": kind, "order_id": "o-1", "process": "install", "node": "n",
         "run": 2, "segment": "gold", "owner": "field-ops", "policy_version": 4, "attrs": {},
         "state": "in_progress_acceptable", "started_at": "2024-06-03T06:00:00Z", "crossed_at": crossed_at,
         "detected_at": crossed_at, "elapsed_s": 7200.7, "commitment_s": 7200.0, "tolerance_s": 93784.0}
    return {**w, **over}


def test_a_commitment_breach_is_a_warning_alert():
    assert alert_for(warning("commitment_breached"), ENDS) == {
        "labels": {"alertname": "SLACommitmentBreached", "severity": "warning", "process": "install", "node": "n",
                   "run": "2", "owner": "field-ops", "segment": "gold", "order_id": "o-1"},
        "annotations": {
            "summary": "install/n of order o-1 passed its commitment of 2h",
            "commitment": "2h", "tolerance": "1d2h3m4s", "elapsed_at_crossing": "2h",
            "started_at": "2024-06-03T06:00:00Z", "crossed_at": "2024-06-03T08:00:02Z",
            "warning_id": "o-1:n:2:commitment_breached", "policy_version": "4",
        },
        "startsAt": "2024-06-03T08:00:02Z",
        "endsAt": ENDS,
    }


def test_a_tolerance_breach_is_a_critical_alert_and_a_missing_owner_is_none():
    a = alert_for(warning("tolerance_breached", owner=None, elapsed_s=93784.2, tolerance_s=45.5), ENDS)
    assert (a["labels"]["alertname"], a["labels"]["severity"], a["labels"]["owner"]) == (
        "SLAToleranceBreached", "critical", "none")
    assert a["annotations"]["summary"] == "install/n of order o-1 passed its tolerance of 45s"
    assert (a["annotations"]["tolerance"], a["annotations"]["elapsed_at_crossing"]) == ("45s", "1d2h3m4s")


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (0.9, "0s"), (59.99, "59s"), (60, "1m"), (3601, "1h1s"),
                                          (86400, "1d"), (90061, "1d1h1m1s")])
def test_durations_in_annotations_are_whole_seconds(seconds, text):
    assert alert_for(warning("commitment_breached", commitment_s=seconds), ENDS)["annotations"]["commitment"] == text


class Recording(Notifier):
    """A notifier whose posts are recorded instead of sent (or fail, while `down`; or are refused as invalid, as
    Alertmanager answers 400, when an alert of the post has an order id in `refuse`)."""

    def __init__(self, redis, ns, lease=300.0, keep_resolved=900.0):
        super().__init__(redis, ns, "http://alertmanager.invalid", lease, keep_resolved)
        self.posts: list[list[dict]] = []
        self.down = False
        self.refuse: set[str] = set()

    async def _post(self, alerts):
        if self.down:
            raise AlertmanagerDown("connection refused")
        if any(a["labels"]["order_id"] in self.refuse for a in alerts):
            raise AlertsRejected("HTTP 400: start time must be before end time")
        if alerts:
            self.posts.append(alerts)


def notify(on_redis, ns: str, *batches: list[dict], **options) -> Recording:
    """Hand each batch to one notifier's `handle`; returns it with its posts."""
    async def body(r):
        n = Recording(r, ns, **options)
        for batch in batches:
            await n.handle(batch)
        return n

    return on_redis(body)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_the_lease_is_an_rfc3339_instant_in_utc():
    n = Notifier(None, "ns", "http://am", 300, 900)
    before = time.time()
    ends = n._ends()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", ends)
    assert before + 300 <= epoch(ends) <= time.time() + 300


@pytest.mark.integration
def test_a_breach_is_posted_and_recorded_as_active(on_redis, sync_redis, ns):
    w = warning("commitment_breached")
    before = time.time()
    n = notify(on_redis, ns, [w])
    [[posted]] = n.posts
    assert posted == alert_for(w, posted["endsAt"])
    assert before + 300 <= epoch(posted["endsAt"]) <= time.time() + 300
    assert {k.decode(): orjson.loads(v) for k, v in sync_redis.hgetall(keys.alerts_sent(ns)).items()} == {
        w["warning_id"]: posted}


@pytest.mark.integration
def test_a_repeated_warning_keeps_one_active_entry(on_redis, sync_redis, ns):
    w = warning("commitment_breached")
    notify(on_redis, ns, [w], [w, w])
    assert sync_redis.hkeys(keys.alerts_sent(ns)) == [w["warning_id"].encode()]


@pytest.mark.integration
def test_resolved_ends_both_alerts_of_the_run_at_the_end_instant(on_redis, sync_redis, ns):
    resolved = warning("resolved", "2024-06-03T08:05:00Z", state="completed_warning")
    other = warning("commitment_breached", warning_id="o-2:n:1:commitment_breached", order_id="o-2")
    before = time.time()
    n = notify(on_redis, ns, [warning("commitment_breached"), other],
               [warning("tolerance_breached", "2024-06-03T08:03:00Z")], [resolved])
    ended = n.posts[-1]
    assert sorted(a["labels"]["alertname"] for a in ended) == ["SLACommitmentBreached", "SLAToleranceBreached"]
    assert {a["endsAt"] for a in ended} == {"2024-06-03T08:05:00Z"}
    assert sync_redis.hkeys(keys.alerts_sent(ns)) == [other["warning_id"].encode()]
    kept = sync_redis.zrange(keys.alerts_resolved(ns), 0, -1, withscores=True)
    assert sorted(orjson.loads(m)["annotations"]["warning_id"] for m, _ in kept) == [
        "o-1:n:2:commitment_breached", "o-1:n:2:tolerance_breached"]
    assert all(before + 900 <= until <= time.time() + 900 for _, until in kept)


@pytest.mark.integration
def test_a_breach_resolved_in_the_same_batch_is_posted_ended(on_redis, sync_redis, ns):
    n = notify(on_redis, ns, [warning("commitment_breached"), warning("resolved", "2024-06-03T08:01:00Z")])
    [[opened, ended]] = n.posts
    assert opened["labels"] == ended["labels"] and ended["endsAt"] == "2024-06-03T08:01:00Z"
    assert sync_redis.hlen(keys.alerts_sent(ns)) == 0
    assert sync_redis.zcard(keys.alerts_resolved(ns)) == 1


@pytest.mark.integration
def test_nothing_is_recorded_while_alertmanager_is_down(on_redis, sync_redis, ns):
    async def body(r):
        n = Recording(r, ns)
        n.down = True
        with pytest.raises(AlertmanagerDown):
            await n.handle([warning("commitment_breached")])

    on_redis(body)
    assert not sync_redis.exists(keys.alerts_sent(ns), keys.alerts_resolved(ns))


@pytest.mark.integration
def test_resend_renews_active_alerts_and_repeats_recent_resolutions(on_redis, sync_redis, ns):
    async def body(r):
        n = Recording(r, ns, lease=60, keep_resolved=900)
        await n.handle([warning("commitment_breached"), warning("tolerance_breached")])
        await n.handle([warning("resolved", "2024-06-03T08:05:00Z", warning_id="o-1:n:2:resolved")])
        await n.handle([warning("commitment_breached", warning_id="o-2:n:1:commitment_breached", order_id="o-2")])
        # a resolution kept past its time is dropped
        await r.zadd(keys.alerts_resolved(ns), {b'{"old": true}': time.time() - 1})
        before = time.time()
        count = await n.resend()
        return n.posts[-1], count, before

    posted, count, before = on_redis(body)
    assert count == 3
    active = [a for a in posted if a["labels"]["order_id"] == "o-2"]
    assert len(active) == 1 and before + 60 <= epoch(active[0]["endsAt"]) <= time.time() + 60
    assert sorted(a["endsAt"] for a in posted if a["labels"]["order_id"] == "o-1") == ["2024-06-03T08:05:00Z"] * 2
    assert sync_redis.zcard(keys.alerts_resolved(ns)) == 2


@pytest.mark.integration
def test_alerts_alertmanager_refuses_are_refused_per_warning_and_not_recorded(on_redis, sync_redis, ns):
    bad = warning("commitment_breached", warning_id="bad:n:1:commitment_breached", order_id="bad")
    good = [warning("commitment_breached"), warning("approaching", warning_id="o-1:n:2:approaching"),
            warning("tolerance_breached", warning_id="o-3:n:1:tolerance_breached", order_id="o-3")]

    async def body(r):
        n = Recording(r, ns)
        n.refuse = {"bad"}
        return n, await n.handle([good[0], bad, *good[1:]])

    n, refused = on_redis(body)
    assert [i for i, _ in refused] == [1] and "HTTP 400" in refused[0][1]
    # the batch at once (refused), then each warning alone: the good ones are delivered
    assert [[a["labels"]["order_id"] for a in p] for p in n.posts] == [["o-1"], ["o-3"]]
    assert sorted(sync_redis.hkeys(keys.alerts_sent(ns))) == [b"o-1:n:2:commitment_breached",
                                                              b"o-3:n:1:tolerance_breached"]


@pytest.mark.integration
def test_a_kept_alert_alertmanager_refuses_is_dropped_and_the_others_resent(on_redis, sync_redis, ns):
    async def body(r):
        n = Recording(r, ns)
        await n.handle([warning("commitment_breached"),
                        warning("commitment_breached", warning_id="o-2:n:1:commitment_breached", order_id="o-2")])
        n.refuse = {"o-2"}
        n.posts.clear()
        return n, await n.resend()

    n, count = on_redis(body)
    assert count == 1 and [[a["labels"]["order_id"] for a in p] for p in n.posts] == [["o-1"]]
    assert sync_redis.hkeys(keys.alerts_sent(ns)) == [b"o-1:n:2:commitment_breached"]


class Answering:
    """A local HTTP server answering every POST with `status` and `body`; `url` is its base URL."""

    def __init__(self, status: int, body: bytes = b""):
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.status, self.body = status, body
        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status,body,error", [
    (400, b"start time must be before end time", AlertsRejected), (422, b"", AlertsRejected),
    (500, b"oops", AlertmanagerDown), (503, b"", AlertmanagerDown), (404, b"no such path", AlertmanagerDown),
    (429, b"", AlertmanagerDown), (200, b"", None)])
def test_only_a_400_says_the_alerts_are_invalid(status, body, error):
    server = Answering(status, body)
    try:
        alert = alert_for(warning("commitment_breached"), ENDS)
        if error is None:
            post_alerts(server.url, [alert])
        else:
            with pytest.raises(error, match=f"HTTP {status}"):
                post_alerts(server.url, [alert])
    finally:
        server.close()


def test_an_unreachable_alertmanager_is_down():
    from monitor.localstack.procs import free_port

    with pytest.raises(AlertmanagerDown):
        post_alerts(f"http://127.0.0.1:{free_port()}", [alert_for(warning("commitment_breached"), ENDS)])
