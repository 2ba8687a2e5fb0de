"""The CERT-FR feed: parsing, first run, new alerts, revisions, and every way a feed can fail.

A real HTTP server on loopback serves the feed; a real SMTP server receives the digests.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mail_fixtures import (
    ENTITY_BOMB,
    FEED_XML,
    FeedServer,
    Passes,
    Route,
    SmtpSink,
    alert_item,
    make_config,
    rss,
)

from collector.alerts import certfr
from collector.alerts import state as alert_store

ALE_012 = "https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-012/"
ALE_013 = "https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-013/"
HALF_HOUR = dt.timedelta(minutes=30)


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.routes["/alerte/feed/"] = Route(FEED_XML, etag='"v1"',
                                               last_modified="Fri, 20 Nov 2026 16:05:00 GMT")
        yield server


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


class FeedPasses(Passes):
    """Passes where db1 always answers (so only what the test sets up can mail)."""

    def run(self, deadline_s: float = 60.0, **samples: dict) -> None:
        samples.setdefault("db1", self.ok())
        super().run(deadline_s, **samples)


def passes_for(tmp_path: Path, feed: FeedServer, sink: SmtpSink, path: str = "/alerte/feed/",
               certfr_options: str = "") -> FeedPasses:
    return FeedPasses(make_config(tmp_path, smtp_port=sink.port, feed_url=feed.url(path),
                                  certfr_options=certfr_options))


def certfr_events(passes: Passes) -> list[tuple[str, str]]:
    return [(r["level"], r["message"]) for r in alert_store.history(passes.state_dir)
            if r["event"] == "certfr"]


# -- parsing --------------------------------------------------------------------------------------
def test_fixture_feed_is_parsed_as_text() -> None:
    items = {i.id: i for i in certfr.parse_feed(FEED_XML)}
    assert len(items) == 3
    vpn = items[ALE_012]
    assert vpn.title == "[MàJ] Vulnérabilité dans ExempleVPN (14 novembre 2026)"
    assert vpn.link == ALE_012
    assert vpn.published == "2026-11-20T16:05:00Z"
    assert vpn.description.startswith("Une vulnérabilité critique a été découverte")
    ssh = items["https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-011/"]
    assert ssh.title == "Vulnérabilité dans ExempleSSH « d'or » & co (02 octobre 2026)"


def test_item_without_guid_is_known_by_its_link_and_bad_links_are_dropped() -> None:
    body = rss([{"title": "sans guid", "link": ALE_013, "pubDate": "Wed, 18 Nov 2026 10:30:00 "
                                                                   "+0000"},
                {"title": "ni guid ni lien"},
                {"title": "lien piégé", "link": "javascript:alert(1)", "guid": "urn:x:1",
                 "pubDate": "pas une date",
                 "description": "<script>alert(1)</script><p>texte &lt;3</p>"}])
    items = certfr.parse_feed(body)
    assert [i.id for i in items] == [ALE_013, "urn:x:1"]
    trap = items[1]
    assert trap.link is None and trap.published is None
    assert trap.description == "texte <3"  # words kept, markup and scripts dropped


@pytest.mark.parametrize(("body", "reason"), [
    (ENTITY_BOMB, "refused: the feed declares XML entities"),
    (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     b"<rss><channel><item><title>&x;</title><guid>g</guid></item></channel></rss>",
     "refused: the feed declares XML entities"),
    (b"<rss><channel><item><title>x</item></channel></rss>", "malformed XML"),
    (b'<feed xmlns="http://www.w3.org/2005/Atom"></feed>', "not an RSS feed"),
    (b"", "malformed XML"),
])
def test_unusable_bodies_raise_a_readable_error(body: bytes, reason: str) -> None:
    with pytest.raises(certfr.FeedError, match=reason):
        certfr.parse_feed(body)


def test_empty_channel_has_no_items() -> None:
    assert certfr.parse_feed(rss([])) == []


# -- passes with a real feed server ---------------------------------------------------------------
def test_first_run_records_without_mailing(tmp_path: Path, feed: FeedServer,
                                           sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    passes.run()
    assert sink.messages == []
    recent = certfr.recent_alerts(passes.state_dir)
    assert [r["id"] for r in recent] == [ALE_012, ALE_013,
                                         "https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-011/"]
    assert set(recent[0]) == {"id", "title", "link", "published", "description", "first_seen",
                              "updated"}
    assert recent[0]["first_seen"] == "2026-11-21T22:00:00Z"
    assert len(certfr.recent_alerts(passes.state_dir, limit=1)) == 1


def test_fetched_at_most_every_interval_with_a_conditional_get(tmp_path: Path, feed: FeedServer,
                                                               sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    for _ in range(30):  # 22:00 .. 22:29
        passes.run()
    assert feed.hits("/alerte/feed/") == 1
    passes.run()  # 22:30
    assert feed.hits("/alerte/feed/") == 2
    headers = feed.requests[-1][1]
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Fri, 20 Nov 2026 16:05:00 GMT"
    assert sink.messages == [] and certfr_events(passes) == []  # 304 is not a problem


def test_new_alert_is_one_notification_in_the_pass_digest(tmp_path: Path, feed: FeedServer,
                                                          sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    passes.run()
    passes.now += HALF_HOUR
    new_item = alert_item(14, 'Vulnérabilité dans "Exemple<Web>" & cie',
                          "Sat, 21 Nov 2026 08:00:00 +0000")
    new_item["description"] = "Corrigez <b>vite</b>."
    feed.routes["/alerte/feed/"] = Route(rss([new_item]), etag='"v2"')
    passes.run(db1=passes.ok(disks={"/": 97}))
    assert len(sink.messages) == 1  # the disk and the CERT-FR alert in one digest
    msg = sink.messages[0]
    assert msg["Subject"] == "[osmon] CRITICAL db1 disk / 97%  (+1 more)"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert 'CERT-FR  CERTFR-2026-ALE-014 Vulnérabilité dans "Exemple<Web>" & cie' in text
    assert "Corrigez vite." in text
    assert "Exemple&lt;Web&gt;&#34; &amp; cie" in html and "<Web>" not in html
    assert 'href="https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-014/"' in html
    passes.now += HALF_HOUR
    passes.run(db1=passes.ok(disks={"/": 97}))
    assert len(sink.messages) == 1  # known now: never again
    history = alert_store.history(passes.state_dir)
    assert [(r["event"], r["host"], r["item"]) for r in history if r["metric"] == "certfr"] == [
        ("certfr", "", "https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-014/")]


def test_a_lone_new_alert_names_itself_in_the_subject(tmp_path: Path, feed: FeedServer,
                                                      sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    passes.run()
    passes.now += HALF_HOUR
    feed.routes["/alerte/feed/"] = Route(rss([alert_item(
        15, "Vulnérabilité dans ExempleDB", "Sat, 21 Nov 2026 09:00:00 +0000")]))
    passes.run()
    assert [m["Subject"] for m in sink.messages] == [
        "[osmon] CERT-FR CERTFR-2026-ALE-015 Vulnérabilité dans ExempleDB"]


def test_revision_updates_without_mail(tmp_path: Path, feed: FeedServer, sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    original = alert_item(13, "Multiples vulnérabilités dans ExempleMail Server",
                          "Wed, 18 Nov 2026 10:30:00 +0000")
    feed.routes["/alerte/feed/"] = Route(rss([original]))
    passes.run()
    revised = dict(original, title="[MàJ] Multiples vulnérabilités dans ExempleMail Server",
                   pubDate="Sat, 21 Nov 2026 12:00:00 +0000")
    feed.routes["/alerte/feed/"] = Route(rss([revised]))
    for _ in range(4):  # the revision stays in the feed: still no mail, pass after pass
        passes.now += HALF_HOUR
        passes.run()
    assert sink.messages == []
    [alert] = certfr.recent_alerts(passes.state_dir)
    assert alert["title"] == "[MàJ] Multiples vulnérabilités dans ExempleMail Server"
    assert alert["published"] == "2026-11-21T12:00:00Z"
    assert alert["first_seen"] == "2026-11-21T22:00:00Z"
    assert alert["updated"] == "2026-11-21T22:31:00Z"


@pytest.mark.parametrize(("route", "reason"), [
    (Route(ENTITY_BOMB), "refused: the feed declares XML entities"),
    (Route(b"Internal error", status=500), "HTTP 500"),
    (Route(rss([])), "the feed lists no alerts"),
    (Route(b"<rss><channel>", status=200), "malformed XML"),
    (Route(FEED_XML * 10), "over max_bytes"),
])
def test_feed_problems_keep_the_pass_ok_and_are_reported_once(
        tmp_path: Path, feed: FeedServer, sink: SmtpSink, route: Route, reason: str) -> None:
    passes = passes_for(tmp_path, feed, sink,
                        certfr_options=f"timeout_s = 10\nmax_bytes = {len(FEED_XML) * 2}")
    feed.routes["/alerte/feed/"] = route
    passes.run(db1=passes.ok(disks={"/": 97}))
    assert [m["Subject"] for m in sink.messages] == ["[osmon] CRITICAL db1 disk / 97%"]
    for _ in range(3):
        passes.now += HALF_HOUR
        passes.run(db1=passes.ok(disks={"/": 97}))
    assert feed.hits("/alerte/feed/") == 4  # retried every interval ...
    [(level, message)] = certfr_events(passes)  # ... reported once
    assert level == "warning" and reason in message
    # The feed never makes a host fail.
    assert [(a["host"], a["metric"]) for a in alert_store.active_alerts(passes.state_dir)] == [
        ("db1", "disk")]
    feed.routes["/alerte/feed/"] = Route(FEED_XML)
    passes.now += HALF_HOUR
    passes.run(db1=passes.ok(disks={"/": 97}))
    assert certfr_events(passes)[0][0] == "ok"
    assert "readable again" in certfr_events(passes)[0][1]
    assert len(sink.messages) == 1  # the first good fetch records, it does not mail


@pytest.mark.parametrize("mode", ["hang", "trickle"])
def test_a_server_that_never_finishes_cannot_hold_the_pass(
        tmp_path: Path, feed: FeedServer, sink: SmtpSink, mode: str) -> None:
    passes = passes_for(tmp_path, feed, sink, certfr_options="timeout_s = 1.5")
    feed.routes["/alerte/feed/"] = Route(mode=mode)
    started = time.monotonic()
    passes.run(deadline_s=30, db1=passes.ok(disks={"/": 97}))
    assert time.monotonic() - started < 15  # liveness, with room for a loaded machine
    assert len(sink.messages) == 1  # the disk alert still went out
    [(level, message)] = certfr_events(passes)
    assert level == "warning"
    assert "no complete answer within 1.5 s" in message or "timed out" in message


def test_the_feed_gets_only_its_share_of_the_pass_deadline(tmp_path: Path, feed: FeedServer,
                                                           sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink, certfr_options="timeout_s = 60")
    feed.routes["/alerte/feed/"] = Route(mode="hang")
    started = time.monotonic()
    passes.run(deadline_s=3)  # half of what is left: 1.5 s, not the 60 s of timeout_s
    assert time.monotonic() - started < 15
    [(_level, message)] = certfr_events(passes)
    assert "no complete answer within 1." in message or "timed out" in message


def test_no_time_left_postpones_the_fetch(tmp_path: Path, feed: FeedServer,
                                          sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    passes.run(deadline_s=0.2)
    assert feed.hits("/alerte/feed/") == 0
    passes.run()
    assert feed.hits("/alerte/feed/") == 1


def test_connection_refused_is_a_feed_problem(tmp_path: Path, sink: SmtpSink) -> None:
    with FeedServer() as gone:
        url = gone.url("/alerte/feed/")
    passes = FeedPasses(make_config(tmp_path, smtp_port=sink.port, feed_url=url))
    passes.run()
    [(level, message)] = certfr_events(passes)
    assert "connection refused" in message


def test_corrupt_state_is_rebuilt_as_a_first_run(tmp_path: Path, feed: FeedServer,
                                                 sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    (passes.state_dir).mkdir(parents=True)
    (passes.state_dir / certfr.STATE_FILE).write_text("{not json", encoding="utf-8")
    assert certfr.recent_alerts(passes.state_dir) == []
    passes.run()
    assert sink.messages == []  # rebuilt: records, does not mail twenty old alerts
    assert len(certfr.recent_alerts(passes.state_dir)) == 3


# -- identity: revisions, missing guids, date order ---------------------------------------------
def revised_history(passes: Passes) -> list[tuple[str, str]]:
    return [(r["item"], r["message"]) for r in alert_store.history(passes.state_dir)
            if r["event"] == "certfr-update"]


def test_revision_of_an_item_without_guid_is_known_by_its_link(
        tmp_path: Path, feed: FeedServer, sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    original = alert_item(13, "Vulnérabilité dans ExempleMail", "Wed, 18 Nov 2026 10:30:00 +0000")
    del original["guid"]
    feed.routes["/alerte/feed/"] = Route(rss([original]))
    passes.run()
    revised = dict(original, title="[MàJ] Vulnérabilité dans ExempleMail",
                   pubDate="Sat, 21 Nov 2026 12:00:00 +0000")
    feed.routes["/alerte/feed/"] = Route(rss([revised]))
    for _ in range(3):
        passes.now += HALF_HOUR
        passes.run()
    assert sink.messages == []
    [alert] = certfr.recent_alerts(passes.state_dir)
    assert alert["id"] == ALE_013 and alert["title"] == "[MàJ] Vulnérabilité dans ExempleMail"
    assert revised_history(passes) == [
        (ALE_013, "CERT-FR alert revised: [MàJ] Vulnérabilité dans ExempleMail")]  # logged once


def test_a_revision_that_drops_its_guid_or_changes_its_url_is_still_a_revision(
        tmp_path: Path, feed: FeedServer, sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    passes.run()  # the fixture: ALE-011, ALE-012, ALE-013 with guids
    without_guid = {"title": "[MàJ] Multiples vulnérabilités dans ExempleMail Server",
                    "link": ALE_013, "pubDate": "Sat, 21 Nov 2026 12:00:00 +0000"}
    other_url = {"title": "[MàJ] Vulnérabilité dans ExempleSSH",
                 "link": "http://cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-011",
                 "guid": "urn:certfr:CERTFR-2026-ALE-011",
                 "pubDate": "Sat, 21 Nov 2026 12:00:00 +0000"}
    feed.routes["/alerte/feed/"] = Route(rss([without_guid, other_url]))
    passes.now += HALF_HOUR
    passes.run()
    assert sink.messages == []
    assert len(certfr.recent_alerts(passes.state_dir)) == 3
    assert sorted(item for item, _message in revised_history(passes)) == [
        "https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-011/", ALE_013]


def test_two_guids_sharing_a_link_are_two_alerts(tmp_path: Path, feed: FeedServer,
                                                 sink: SmtpSink) -> None:
    """A feed pointing every item at its home page must not hide new alerts."""
    passes = passes_for(tmp_path, feed, sink)
    home = "https://www.cert.ssi.gouv.fr/"
    first = {"title": "Alerte A", "link": home, "guid": "urn:x:a",
             "pubDate": "Sat, 21 Nov 2026 08:00:00 +0000"}
    feed.routes["/alerte/feed/"] = Route(rss([first]))
    passes.run()
    second = {"title": "Alerte B", "link": home, "guid": "urn:x:b",
              "pubDate": "Sat, 21 Nov 2026 09:00:00 +0000"}
    feed.routes["/alerte/feed/"] = Route(rss([second, first]))
    passes.now += HALF_HOUR
    passes.run()
    assert [m["Subject"] for m in sink.messages] == ["[osmon] CERT-FR urn:x:b Alerte B"]


def test_items_out_of_date_order_and_stale_copies_never_mail_nor_undo_a_revision(
        tmp_path: Path, feed: FeedServer, sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    passes.run()  # the fixture: the [MàJ] revision of ALE-012 first, not in date order
    stale = alert_item(12, "Vulnérabilité dans ExempleVPN (14 novembre 2026)",
                       "Sat, 14 Nov 2026 18:00:00 +0000")  # the original, before the revision
    head, *items = FEED_XML.split(b"<item>")
    items[-1], tail = items[-1].split(b"</channel>")
    shuffled = b"<item>".join([head, items[2], items[0], items[1]]) + b"</channel>" + tail
    assert certfr.parse_feed(shuffled)[0].id.endswith("ALE-011/")
    for body in (shuffled, FEED_XML, rss([stale])):
        feed.routes["/alerte/feed/"] = Route(body)
        passes.now += HALF_HOUR
        passes.run()
    assert sink.messages == []
    titles = {a["id"]: a["title"] for a in certfr.recent_alerts(passes.state_dir)}
    assert titles[ALE_012] == "[MàJ] Vulnérabilité dans ExempleVPN (14 novembre 2026)"
    assert revised_history(passes) == []


def test_the_same_alert_listed_twice_keeps_the_newest(tmp_path: Path, feed: FeedServer,
                                                      sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    passes.run()
    newest = alert_item(12, "[MàJ] ExempleVPN, deuxième mise à jour",
                        "Sun, 22 Nov 2026 08:00:00 +0000")
    older = alert_item(12, "ExempleVPN", "Sat, 14 Nov 2026 18:00:00 +0000")
    feed.routes["/alerte/feed/"] = Route(rss([newest, older]))
    for _ in range(3):
        passes.now += HALF_HOUR
        passes.run()
    assert sink.messages == []
    titles = {a["id"]: a["title"] for a in certfr.recent_alerts(passes.state_dir)}
    assert titles[ALE_012] == "[MàJ] ExempleVPN, deuxième mise à jour"
    assert len(revised_history(passes)) == 1


# -- untrusted text in the mail -------------------------------------------------------------------
def test_description_with_escaped_html_is_text_in_the_html_mail(
        tmp_path: Path, feed: FeedServer, sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    passes.run()
    item = alert_item(16, "Vulnérabilité dans ExempleWiki", "Sat, 21 Nov 2026 08:00:00 +0000")
    # rss() escapes once more: the XML text is escaped HTML, like the real feed's.
    item["description"] = ('<p>Mettez à jour <b>vite</b>.</p><script>alert(1)</script>'
                           '<img src=x onerror=alert(2)> Balise citée : &lt;iframe&gt;')
    feed.routes["/alerte/feed/"] = Route(rss([item]))
    passes.now += HALF_HOUR
    passes.run()
    [msg] = sink.messages
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "Mettez à jour vite. Balise citée : <iframe>" in text
    assert "Mettez à jour vite. Balise citée : &lt;iframe&gt;" in html
    for markup in ("<b>", "<p>Mettez", "<script", "<img", "<iframe", "alert("):
        assert markup not in html


def test_a_title_cannot_inject_mail_headers(tmp_path: Path, feed: FeedServer,
                                            sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    passes.run()
    body = rss([alert_item(17, "PLACEHOLDER", "Sat, 21 Nov 2026 08:00:00 +0000")]).replace(
        b"PLACEHOLDER",
        b"Alerte&#13;&#10;Bcc: evil@example.org&#13;&#10;&#13;&#10;&lt;b&gt;corps&lt;/b&gt;")
    feed.routes["/alerte/feed/"] = Route(body)
    passes.now += HALF_HOUR
    passes.run()
    [msg] = sink.messages
    assert msg["Bcc"] is None
    # strip(): Python's e-mail folder puts a subject holding "<" on its own continuation line.
    assert msg["Subject"].strip() == ("[osmon] CERT-FR CERTFR-2026-ALE-017 Alerte Bcc: "
                                      "evil@example.org <b>corps</b>")
    assert sorted(sink.recorder.envelopes[0][1]) == ["boss@example.org", "ops@example.org"]
    assert b"\nBcc:" not in sink.recorder.envelopes[0][2]
    assert "&lt;b&gt;corps&lt;/b&gt;" in msg.get_body(("html",)).get_content()


def test_size_cap_without_content_length(tmp_path: Path, feed: FeedServer,
                                         sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink, certfr_options="max_bytes = 100000")
    feed.routes["/alerte/feed/"] = Route(FEED_XML + b" " * 1_000_000, send_length=False)
    passes.run()
    [(level, message)] = certfr_events(passes)
    assert level == "warning" and "over max_bytes (100000 bytes)" in message
    assert certfr.recent_alerts(passes.state_dir) == []


@pytest.mark.parametrize("damage", [
    '{"version": 1, "initialized": true, "alerts": {"x": "junk"}, "etag": 5}',
    '{"version": 1, "initialized": true, "alerts": [], "problem": "x", "last_fetch": 7}',
    '{"version": 1, "initialized": true, "alerts": {"a": {"id": "a", "title": "t", '
    '"published": "yesterday", "first_seen": null}}}',
])
def test_damaged_state_never_breaks_the_feed(tmp_path: Path, feed: FeedServer, sink: SmtpSink,
                                             damage: str) -> None:
    passes = passes_for(tmp_path, feed, sink)
    passes.state_dir.mkdir(parents=True)
    (passes.state_dir / certfr.STATE_FILE).write_text(damage, encoding="utf-8")
    assert certfr.recent_alerts(passes.state_dir) == []  # the dashboard does not crash
    passes.run()
    assert feed.hits("/alerte/feed/") == 1
    assert sink.messages == []  # recorded again as a first run, not mailed
    assert len(certfr.recent_alerts(passes.state_dir)) == 3
    passes.now += HALF_HOUR
    feed.routes["/alerte/feed/"] = Route(rss([alert_item(
        18, "Vulnérabilité dans ExempleCloud", "Sat, 21 Nov 2026 09:00:00 +0000")]))
    passes.run()
    assert len(sink.messages) == 1  # and the feed works again


def test_interval_is_configurable(tmp_path: Path, feed: FeedServer, sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink, certfr_options="interval_s = 300")
    for _ in range(11):  # 22:00 .. 22:10
        passes.run()
    assert feed.hits("/alerte/feed/") == 3  # 22:00, 22:05, 22:10


def certfr_page(passes: Passes) -> str:
    """The page's own content (``<main>``): the layout's hidden banners, such as "The last
    collection pass failed", are not the feed's."""
    from web import create_app

    app = create_app(passes.config, test_config={"TESTING": True,
                                                 "OSMON_CLOCK": lambda: passes.now})
    html = app.test_client().get("/certfr").get_data(as_text=True)
    return html.split('<main id="main">', 1)[1].split("</main>", 1)[0]


def test_the_page_says_when_and_why_the_last_fetch_failed(
        tmp_path: Path, feed: FeedServer, sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    feed.routes["/alerte/feed/"] = Route(b"Internal error", status=500)
    first_try = passes.now
    passes.run()
    html = certfr_page(passes)
    assert "No CERT-FR alert fetched yet" not in html
    assert "The last fetch of the feed failed" in html
    assert f"{first_try:%Y-%m-%d %H:%M:%S} UTC" in html and "HTTP 500" in html
    assert "never fetched successfully" in html
    # Later: the feed was read once, then fails again; the alerts stay, and the page says so.
    feed.routes["/alerte/feed/"] = Route(FEED_XML)
    passes.now += HALF_HOUR
    good = passes.now
    passes.run()
    assert "failed" not in certfr_page(passes)
    feed.routes["/alerte/feed/"] = Route(mode="hang")
    passes.now += HALF_HOUR
    passes.run(deadline_s=3)
    html = certfr_page(passes)
    assert "The last fetch of the feed failed" in html and "no complete answer" in html
    assert f"last read successfully {good:%Y-%m-%d %H:%M:%S} UTC" in html
    assert "CERTFR-2026-ALE-012" in html  # what was fetched before is still listed


def test_a_page_before_any_fetch_says_when_one_comes(tmp_path: Path, feed: FeedServer,
                                                      sink: SmtpSink) -> None:
    passes = passes_for(tmp_path, feed, sink)
    html = certfr_page(passes)
    assert "No fetch of the feed yet" in html and "failed" not in html
