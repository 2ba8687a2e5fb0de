"""Notifications POSTed to a real HTTP server on loopback, in the Alertmanager webhook format.

The hook runs pass after pass (mail_fixtures.Passes) with an injected clock, as the
collection pass calls it; the server (webhook_fixtures.WebhookServer) answers, fails, hangs,
trickles or redirects, and the tests count what a chat bridge would have received.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

import pytest
from mail_fixtures import (
    T0,
    FeedServer,
    Passes,
    Route,
    SmtpSink,
    alert_item,
    make_config,
    ok_sample,
    rss,
)
from process_fixtures import SLACK_S
from webhook_fixtures import SilentSmtp, WebhookServer, timed

from collector.alerts import state as alert_store
from collector.alerts import webhook
from collector.alerts.alertmanager import fingerprint
from collector.errors import ConfigError

TOKEN = "tok-3f9a7c1e-never-shown"


def webhook_config(tmp_path: Path, url: str, *, token: bool = True, timeout_s: float = 2.0,
                   smtp_port: int | None = None, extra: str = "", **kwargs: object):
    lines = ["[webhook]", f'url = "{url}"', f"timeout_s = {timeout_s}"]
    if token:
        path = tmp_path / "webhook-token"
        path.write_text(TOKEN + "\n", encoding="utf-8")
        path.chmod(0o600)
        lines.append(f'bearer_token_file = "{path}"')
    return make_config(tmp_path, smtp_port=smtp_port, extra="\n".join(lines) + "\n" + extra,
                       **kwargs)


@pytest.fixture
def hook() -> WebhookServer:
    with WebhookServer() as server:
        yield server


def test_a_problem_and_its_recovery_in_the_alertmanager_format(tmp_path: Path,
                                                               hook: WebhookServer) -> None:
    passes = Passes(webhook_config(tmp_path, hook.url("/osmon?room=ops")))  # no [smtp] at all
    passes.run(db1=passes.ok(disks={"/var": 97.0}))
    assert len(hook.received) == 1
    request = hook.received[0]
    assert request.path == "/osmon?room=ops"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    firing = request.json
    assert set(firing) == {"receiver", "status", "alerts", "groupLabels", "commonLabels",
                           "commonAnnotations", "externalURL", "version", "groupKey",
                           "truncatedAlerts"}
    assert (firing["version"], firing["status"], firing["receiver"]) == ("4", "firing", "osmon")
    assert firing["groupKey"] == '{}:{alertname="disk", instance="db1", mount="/var"}'
    assert firing["groupLabels"] == {"alertname": "disk", "instance": "db1", "mount": "/var"}
    assert firing["truncatedAlerts"] == 0
    assert firing["externalURL"] == "https://osmon.example.org"
    [alert] = firing["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == {"alertname": "disk", "instance": "db1", "severity": "critical",
                               "mount": "/var"}
    assert alert["annotations"] == {
        "summary": "db1 disk /var 97%", "description": "disk /var on db1 is at 97% (critical "
        "at 95%)", "event": "problem", "value": "97%", "threshold": "95%"}
    assert alert["startsAt"] == "2026-11-21T22:00:00Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == "https://osmon.example.org/hosts/db1"
    assert firing["commonLabels"] == alert["labels"]
    assert firing["commonAnnotations"] == alert["annotations"]

    passes.run(db1=passes.ok(disks={"/var": 50.0}))
    resolved = hook.received[1].json
    [gone] = resolved["alerts"]
    assert resolved["status"] == "resolved" and gone["status"] == "resolved"
    assert gone["labels"] == alert["labels"]  # the severity it had: the same alert
    assert gone["fingerprint"] == alert["fingerprint"] == fingerprint(alert["labels"])
    assert gone["endsAt"] == "2026-11-21T22:01:00Z"
    assert gone["startsAt"] == alert["startsAt"]
    assert resolved["groupKey"] == firing["groupKey"]  # the bridge closes what it opened
    assert not webhook.pending(passes.state_dir)


def test_reminders_escalations_and_a_digest_of_several_hosts(tmp_path: Path,
                                                             hook: WebhookServer) -> None:
    passes = Passes(webhook_config(tmp_path, hook.url(), hosts=("db1", "web1")))
    passes.run(db1=passes.ok(disks={"/": 90.0}), web1=passes.ok("web1", disks={"/": 91.0}))
    first = [p["alerts"] for p in hook.payloads]
    assert [[a["labels"]["instance"] for a in alerts] for alerts in first] == [["db1"],
                                                                             ["web1"]]
    assert hook.payloads[0]["commonLabels"] == {"alertname": "disk", "severity": "warning",
                                                "instance": "db1", "mount": "/"}
    passes.run(db1=passes.ok(disks={"/": 96.0}), web1=passes.ok("web1", disks={"/": 91.0}))
    [escalation] = hook.payloads[2]["alerts"]
    assert escalation["annotations"]["event"] == "escalation"
    assert escalation["labels"]["severity"] == "critical"
    assert escalation["fingerprint"] == first[0][0]["fingerprint"]
    assert hook.payloads[2]["groupKey"] == hook.payloads[0]["groupKey"]
    passes.now += dt.timedelta(hours=4)
    passes.run(db1=passes.ok(disks={"/": 96.0}), web1=passes.ok("web1", disks={"/": 91.0}))
    reminders = [a for p in hook.payloads[3:] for a in p["alerts"]]
    assert [a["annotations"]["event"] for a in reminders] == ["reminder", "reminder"]
    assert all(a["status"] == "firing" for a in reminders)


def test_a_host_down_and_a_new_certfr_alert(tmp_path: Path, hook: WebhookServer) -> None:
    with FeedServer() as feed:
        feed.routes["/feed"] = Route(rss([alert_item(6, "Vulnérabilité ancienne",
                                                     "Fri, 20 Nov 2026 10:00:00 +0000")]))
        passes = Passes(webhook_config(tmp_path, hook.url(), feed_url=feed.url("/feed")))
        passes.run(db1=passes.failed())  # the feed's first fetch records, tells nothing
        passes.now += dt.timedelta(minutes=30)
        feed.routes["/feed"] = Route(rss([alert_item(7, "Vulnérabilité dans OpenSSH",
                                                     "Sat, 21 Nov 2026 10:00:00 +0000")]))
        passes.run(db1=passes.failed())
    alerts = [a for p in hook.payloads for a in p["alerts"]]
    certfr = next(a for a in alerts if a["labels"]["alertname"] == "certfr")
    assert certfr["labels"] == {"alertname": "certfr", "severity": "info",
                                "id": "https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-007/"}
    assert certfr["annotations"]["summary"] == "Vulnérabilité dans OpenSSH"
    assert certfr["generatorURL"] == "https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-007/"
    down = next(a for a in alerts if a["labels"]["alertname"] == "down")
    assert down["labels"] == {"alertname": "down", "instance": "db1", "severity": "critical"}
    assert down["annotations"]["summary"].startswith("db1 is down: timeout")


def test_each_alert_is_its_own_group_so_a_bridge_opens_and_closes_the_right_incident(
        tmp_path: Path, hook: WebhookServer) -> None:
    """PagerDuty's and Opsgenie's notifiers in Alertmanager key an incident on the groupKey
    and close it when a message of that group is ``resolved``: one group per alert."""
    passes = Passes(webhook_config(tmp_path, hook.url(), hosts=("db1", "web1")))
    passes.run(db1=passes.ok(disks={"/": 97.0}), web1=passes.ok("web1", disks={"/": 91.0}))
    db1_key = '{}:{alertname="disk", instance="db1", mount="/"}'
    web1_key = '{}:{alertname="disk", instance="web1", mount="/"}'
    first = {p["groupKey"]: p for p in hook.payloads}
    assert list(first) == [db1_key, web1_key]  # the worst first
    assert first[db1_key]["groupLabels"] == {"alertname": "disk", "instance": "db1",
                                             "mount": "/"}
    assert [len(p["alerts"]) for p in hook.payloads] == [1, 1]
    assert all(p["status"] == "firing" for p in hook.payloads)

    hook.received.clear()  # db1 recovers while web1 gets worse: one pass, two groups
    passes.run(db1=passes.ok(disks={"/": 50.0}), web1=passes.ok("web1", disks={"/": 97.0}))
    second = {p["groupKey"]: (p["status"], [a["status"] for a in p["alerts"]])
              for p in hook.payloads}
    assert second == {db1_key: ("resolved", ["resolved"]), web1_key: ("firing", ["firing"])}


def test_a_certfr_alert_is_news_sent_already_resolved(tmp_path: Path,
                                                      hook: WebhookServer) -> None:
    """An advisory never ends: sent firing, it would keep an incident open for ever."""
    with FeedServer() as feed:
        feed.routes["/feed"] = Route(rss([alert_item(6, "Vulnérabilité ancienne",
                                                     "Fri, 20 Nov 2026 10:00:00 +0000")]))
        passes = Passes(webhook_config(tmp_path, hook.url(), feed_url=feed.url("/feed")))
        passes.run(db1=passes.ok())  # the feed's first fetch records, tells nothing
        passes.now += dt.timedelta(minutes=30)
        feed.routes["/feed"] = Route(rss([alert_item(7, "Vulnérabilité dans OpenSSH",
                                                     "Sat, 21 Nov 2026 10:00:00 +0000")]))
        passes.run(db1=passes.ok())
    [message] = hook.payloads
    [alert] = message["alerts"]
    assert message["status"] == alert["status"] == "resolved"
    assert alert["startsAt"] == alert["endsAt"] == "2026-11-21T10:00:00Z"
    assert message["groupKey"] == ('{}:{alertname="certfr", '
                                   'id="https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-007/"}')


def test_what_a_silence_holds_back_is_not_posted(tmp_path: Path, hook: WebhookServer) -> None:
    from collector.alerts import muting_store
    from collector.alerts.muting_input import SilenceRequest

    config = webhook_config(tmp_path, hook.url(), hosts=("db1", "web1"))
    muting_store.add_silence(config, SilenceRequest(host="db1", duration="2h",
                                                    reason="disk swap"),
                             author="alice", now=T0, zone=dt.timezone.utc)
    passes = Passes(config)
    passes.run(db1=passes.ok(disks={"/": 97.0}), web1=passes.ok("web1", disks={"/": 97.0}))
    assert [a["labels"]["instance"] for p in hook.payloads for a in p["alerts"]] == ["web1"]


def test_an_endpoint_down_then_up_gets_each_message_once_in_order(tmp_path: Path) -> None:
    with WebhookServer() as hook:
        port = hook.port
        url = hook.url()
    passes = Passes(webhook_config(tmp_path, url))  # nothing listens any more
    passes.run(db1=passes.ok(disks={"/": 97.0}))
    passes.run(db1=passes.ok(disks={"/": 50.0}))
    assert len(webhook.pending(passes.state_dir)) == 2
    history = alert_store.history(passes.state_dir, limit=50)
    assert any(h["event"] == "webhook" and "cannot be reached: connection refused by "
               f"http://127.0.0.1:{port}" in h["message"] for h in history)
    assert "/alerts" not in json.dumps(history)  # the URL's path may be a secret
    server = WebhookServer()
    server.httpd.server_close()
    import http.server
    server.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                   server.httpd.RequestHandlerClass)
    server.httpd.daemon_threads = True
    import threading
    server._thread = threading.Thread(target=server.httpd.serve_forever,
                                      kwargs={"poll_interval": 0.05}, daemon=True)
    with server:
        passes.run(db1=passes.ok(disks={"/": 50.0}))
        passes.run(db1=passes.ok(disks={"/": 50.0}))
    assert [p["alerts"][0]["status"] for p in server.payloads] == ["firing", "resolved"]
    assert not webhook.pending(passes.state_dir)
    assert alert_store.history(passes.state_dir, limit=1)[0]["message"] == \
        "the webhook works again: the waiting messages were sent"


@pytest.mark.parametrize("status", [500, 503, 408, 425, 429, 401, 403])
def test_an_error_answer_keeps_the_message_for_the_next_pass(tmp_path: Path, status: int) -> None:
    """A server error, "too early", "too many requests", "timeout", and a refused token (the
    credentials, not the message, which the admin fixes): the message waits."""
    with WebhookServer(status=status) as hook:
        passes = Passes(webhook_config(tmp_path, hook.url()))
        passes.run(db1=passes.ok(disks={"/": 97.0}))
        assert len(hook.received) == 1 and len(webhook.pending(passes.state_dir)) == 1
        assert f"answered {status}" in (webhook.failure(passes.state_dir) or "")
        hook.status = 202
        passes.run(db1=passes.ok(disks={"/": 97.0}))
        assert len(hook.received) == 2 and hook.received[0].body == hook.received[1].body
        passes.run(db1=passes.ok(disks={"/": 97.0}))
        assert len(hook.received) == 2  # delivered: never again
    assert webhook.failure(passes.state_dir) is None


@pytest.mark.parametrize("status", [400, 404, 410, 413, 422])
def test_a_message_refused_for_good_is_set_aside_and_the_others_go(
        tmp_path: Path, status: int, caplog: pytest.LogCaptureFixture) -> None:
    with WebhookServer(refuse={"web1": status}) as hook:
        passes = Passes(webhook_config(tmp_path, hook.url(), hosts=("db1", "web1")))
        passes.run(web1=passes.ok("web1", disks={"/": 97.0}))  # refused: web1's problem
        passes.run(db1=passes.ok(disks={"/": 97.0}), web1=passes.ok("web1", disks={"/": 97.0}))
        passes.run(db1=passes.ok(disks={"/": 97.0}), web1=passes.ok("web1", disks={"/": 50.0}))
        passes.run(db1=passes.ok(disks={"/": 50.0}), web1=passes.ok("web1", disks={"/": 50.0}))
    posted = [[(a["labels"].get("instance"), a["status"]) for a in p["alerts"]]
              for p in hook.payloads]
    assert posted == [[("web1", "firing")], [("db1", "firing")], [("web1", "resolved")],
                      [("db1", "resolved")]]  # each once: the refused ones were not retried
    assert webhook.pending(passes.state_dir) == []
    aside = sorted((passes.state_dir / "outbox").glob("*.webhook.rejected"))
    assert len(aside) == 2 and all(b"web1" in p.read_bytes() for p in aside)
    assert all(p.stat().st_mode & 0o077 == 0 for p in aside)
    assert webhook.failure(passes.state_dir) is None  # the endpoint works
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert sum(f"answered {status}" in e and "rejected for good" in e for e in errors) == 2


@pytest.mark.parametrize("mode", ["hang", "trickle", "slow", "reset"])
def test_whatever_the_endpoint_does_the_pass_keeps_its_deadline(tmp_path: Path,
                                                                 mode: str) -> None:
    with WebhookServer(mode=mode, delay_s=60) as hook:
        passes = Passes(webhook_config(tmp_path, hook.url(), timeout_s=60))
        took = timed(lambda: passes.run(deadline_s=2.0, db1=passes.ok(disks={"/": 97.0})))
        assert took < 2.0 + SLACK_S  # the pass's deadline, not the webhook's 60 s
        assert len(webhook.pending(passes.state_dir)) == 1
        reason = webhook.failure(passes.state_dir) or ""
        assert (("no answer from http://127.0.0.1:" in reason and " within " in reason)
                or "did not answer in HTTP" in reason or "cannot talk to" in reason), reason


def test_a_slow_but_working_endpoint_is_waited_for(tmp_path: Path) -> None:
    with WebhookServer(mode="slow", delay_s=1.0) as hook:
        passes = Passes(webhook_config(tmp_path, hook.url(), timeout_s=5))
        passes.run(db1=passes.ok(disks={"/": 97.0}))
        assert len(hook.received) == 1 and not webhook.pending(passes.state_dir)


def test_a_redirect_is_refused_and_the_other_server_gets_nothing(tmp_path: Path) -> None:
    with WebhookServer() as elsewhere, WebhookServer(mode="redirect") as hook:
        hook.location = elsewhere.url("/stolen")
        passes = Passes(webhook_config(tmp_path, hook.url()))
        passes.run(db1=passes.ok(disks={"/": 97.0}))
        assert elsewhere.received == [] and len(webhook.pending(passes.state_dir)) == 1
        assert "answered 302" in (webhook.failure(passes.state_dir) or "")
        assert "does not follow" in (webhook.failure(passes.state_dir) or "")


def test_the_token_is_never_logged_kept_or_shown(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with WebhookServer(status=403, reason=f"bad token {TOKEN}") as hook:
        passes = Passes(webhook_config(tmp_path, hook.url()))
        passes.run(db1=passes.ok(disks={"/": 97.0}))
        assert hook.received[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert "answered 403 bad token [hidden]" in (webhook.failure(passes.state_dir) or "")
    assert TOKEN not in caplog.text
    for path in passes.state_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    from collector.redact import Redactor
    assert Redactor(passes.config)(f"x {TOKEN} {hook.url()}") == "x [hidden] [hidden]"


def test_a_hung_mail_server_does_not_starve_the_webhook(tmp_path: Path,
                                                        hook: WebhookServer) -> None:
    with SilentSmtp() as smtp:
        passes = Passes(webhook_config(tmp_path, hook.url(), smtp_port=smtp.port,
                                       smtp_timeout_s=60))
        took = timed(lambda: passes.run(deadline_s=4.0, db1=passes.ok(disks={"/": 97.0})))
    assert took < 4.0 + SLACK_S  # the pass's deadline, not the mail server's 60 s
    assert len(hook.received) == 1  # the e-mail waited for its share, then gave up
    assert len(list((passes.state_dir / "outbox").glob("*.eml"))) == 1


def test_the_outbox_holds_each_channel_apart(tmp_path: Path) -> None:
    with SmtpSink() as sink, WebhookServer(status=500) as hook:
        passes = Passes(webhook_config(tmp_path, hook.url(), smtp_port=sink.port))
        passes.run(db1=passes.ok(disks={"/": 97.0}))
        assert len(sink.messages) == 1  # the mail went, the webhook message waits
    [waiting] = webhook.pending(passes.state_dir)
    record = json.loads(waiting.read_text())
    assert record["channel"] == "webhook" and record["payload"]["version"] == "4"
    assert waiting.stat().st_mode & 0o077 == 0


def test_messages_queued_by_an_earlier_osmon_are_still_sent(tmp_path: Path) -> None:
    """The outbox files' names and contents are a contract with the osmon that wrote them."""
    payload = {"receiver": "osmon", "status": "firing", "alerts": [], "version": "4"}
    with SmtpSink() as sink, WebhookServer() as hook:
        config = webhook_config(tmp_path, hook.url(), smtp_port=sink.port)
        outbox = config.state_dir / "outbox"
        outbox.mkdir(parents=True)
        (outbox / "20261121T215900Z-000-0123456789ab.webhook.json").write_text(json.dumps(
            {"version": 1, "channel": "webhook", "payload": payload}))
        (outbox / "20261121T215900Z-0123456789ab.eml").write_bytes(
            b"From: osmon@example.org\r\nTo: ops@example.org\r\nSubject: queued before\r\n"
            b"Message-ID: <old@example.org>\r\n\r\nbody\r\n")
        Passes(config).run(db1=ok_sample("db1", T0, disks={"/": 50.0}))
        assert hook.payloads == [payload]
        assert [m["Subject"] for m in sink.messages] == ["queued before"]
    assert list(outbox.iterdir()) == []


@pytest.mark.parametrize("table, expected", [
    ('url = "ftp://example.org/x"', "'url' must be an http:// or https:// URL with a host"),
    ('url = "https://bob:pw@example.org/x"', "'url' must not hold a user or password"),
    ('url = "http://example.org/x"\nbearer_token_file = "TOKEN"',
     "'bearer_token_file' is set with an http:// url: the token would cross the network in "
     "clear; use https://"),
    ('url = "https://example.org/x"\nbearer_token_file = "nope"',
     "'bearer_token_file' names"),
    ('url = "https://example.org/x"\nbearer_token = "abc"', "'bearer_token' in clear is not "
     "accepted"),
    ('url = "https://example.org/x"\ntimeout_s = 0', "'timeout_s' must be at least 0.1"),
    ('url = "https://example.org/x"\ntimout_s = 3', "unknown key 'timout_s' (did you mean "
     "'timeout_s'?)"),
    ("enabled = true", "'url' is missing"),
])
def test_a_mistake_in_webhook_names_the_file_and_the_key(tmp_path: Path, table: str,
                                                         expected: str) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, extra="[webhook]\n" + table.replace("TOKEN", str(token)))
    [problem] = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'hosts.toml'}: [webhook]: ") and expected in problem
    assert "example.org/x" not in problem


def test_off_without_a_url_and_on_loopback_over_http(tmp_path: Path) -> None:
    assert not make_config(tmp_path).webhook.enabled
    config = webhook_config(tmp_path, "http://127.0.0.1:9/x")
    assert config.webhook.enabled and config.webhook.where == "http://127.0.0.1:9"
    assert TOKEN not in repr(config)
    started = time.monotonic()
    passes = Passes(config)
    passes.run(db1=passes.ok(disks={"/": 97.0}))
    assert time.monotonic() - started < 5


def test_a_pass_with_hundreds_of_notifications_is_a_bounded_number_of_messages(
        tmp_path: Path, hook: WebhookServer) -> None:
    """A mass outage: the first 100 alerts in groups of their own, the rest in the
    catch-all group, 200 alerts a message; none dropped."""
    hosts = tuple(f"web{i:03d}" for i in range(450))
    passes = Passes(webhook_config(tmp_path, hook.url(), hosts=hosts))
    passes.run(**{h: passes.ok(h, disks={"/": 97.0}) for h in hosts})
    sizes = [len(p["alerts"]) for p in hook.payloads]
    assert sizes == [1] * 100 + [200, 150]
    assert len({p["groupKey"] for p in hook.payloads[:100]}) == 100
    assert [p["groupKey"] for p in hook.payloads[100:]] == ["{}:{}", "{}:{}"]
    assert all(p["truncatedAlerts"] == 0 for p in hook.payloads)
    instances = [a["labels"]["instance"] for p in hook.payloads for a in p["alerts"]]
    assert sorted(instances) == list(hosts)
