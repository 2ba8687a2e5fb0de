"""E-mail delivery and ``osmon test-email`` against real SMTP servers on loopback: plain, with
login, STARTTLS and implicit TLS, and each way it goes wrong, as the admin reads it."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mail_fixtures import (
    T0,
    Passes,
    SmtpSink,
    free_port,
    make_config,
    minutes,
    self_signed_cert,
    server_tls_context,
)

from collector import cli
from collector.alerts import mail as notify
from collector.alerts.rules import Notification

# aiosmtpd sets its own deprecated attribute on every successful login.
login_warning = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")

DISK = Notification(event="problem", level="critical", host="db1", metric="disk", item="/",
                    value=97.0, threshold=95.0, since="2026-11-21T22:00:00Z",
                    message="disk / on db1 is at 97% (critical at 95%)", unit="%")


def smtp_config(tmp_path: Path, port: int, options: str = "", to: str = '["ops@example.org"]',
                timeout_s: float = 5):
    return make_config(tmp_path, extra=(
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nfrom = "osmon@example.org"\nto = {to}\n'
        f"timeout_s = {timeout_s}\n{options}"))


def test_email(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
               ) -> tuple[int, str, str]:
    code = cli.main(["--config", str(tmp_path / "hosts.toml"), "test-email", *args])
    out, err = capsys.readouterr()
    return code, out, err


test_email.__test__ = False  # a helper, not a test


@pytest.fixture
def tls_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A throw-away certificate that the client trusts (through $SSL_CERT_FILE)."""
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


# -- osmon test-email ---------------------------------------------------------------------------
def test_test_email_sends_and_says_so(tmp_path: Path, sink: SmtpSink,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    smtp_config(tmp_path, sink.port)
    code, out, _err = test_email(tmp_path, capsys)
    assert code == 0
    assert f"test e-mail sent to ops@example.org through 127.0.0.1:{sink.port}" in out
    [msg] = sink.messages
    assert msg["Subject"] == "[osmon] test e-mail"
    assert "reach ops@example.org" in msg.get_body(("plain",)).get_content()
    assert msg.get_body(("html",)) is not None


def test_test_email_to_another_address(tmp_path: Path, sink: SmtpSink,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    smtp_config(tmp_path, sink.port)
    code, _out, _err = test_email(tmp_path, capsys, "--to", "me@example.org")
    assert code == 0
    assert sink.recorder.envelopes[0][1] == ["me@example.org"]


def test_test_email_connection_refused(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    smtp_config(tmp_path, port)
    code, _out, err = test_email(tmp_path, capsys)
    assert code == 1
    assert f"not sent: connection refused by 127.0.0.1:{port}" in err


def test_test_email_no_recipients(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smtp_config(tmp_path, free_port(), to="[]")
    code, _out, err = test_email(tmp_path, capsys)
    assert code == 1
    assert "no recipients" in err and "[smtp] to" in err


@login_warning
def test_test_email_with_login(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSMON_SMTP_PASSWORD", "s3cret")
    with SmtpSink(login=("osmon", "s3cret")) as server:
        smtp_config(tmp_path, server.port, 'user = "osmon"')
        code, _out, _err = test_email(tmp_path, capsys)
        assert code == 0 and len(server.messages) == 1


def test_test_email_auth_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSMON_SMTP_PASSWORD", "wrong")
    with SmtpSink(login=("osmon", "s3cret")) as server:
        smtp_config(tmp_path, server.port, 'user = "osmon"')
        code, _out, err = test_email(tmp_path, capsys)
        assert server.messages == []
    assert code == 1
    assert "authentication failed for user 'osmon'" in err and "535" in err


def test_test_email_user_without_password(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSMON_SMTP_PASSWORD", raising=False)
    smtp_config(tmp_path, free_port(), 'user = "osmon"')
    code, _out, err = test_email(tmp_path, capsys)
    assert code == 1
    assert "no password" in err and "$OSMON_SMTP_PASSWORD" in err


def test_test_email_password_file_missing(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    smtp_config(tmp_path, free_port(), 'user = "osmon"\npassword_file = "nowhere.txt"')
    code, _out, err = test_email(tmp_path, capsys)
    assert code == 1 and "cannot read password_file" in err


def test_test_email_ssl_against_a_plain_server_is_a_tls_problem(
        tmp_path: Path, sink: SmtpSink, capsys: pytest.CaptureFixture[str]) -> None:
    smtp_config(tmp_path, sink.port, 'security = "ssl"')
    code, _out, err = test_email(tmp_path, capsys)
    assert code == 1
    assert "TLS problem" in err and 'security = "ssl" expects TLS' in err


def test_test_email_starttls_not_offered(tmp_path: Path, sink: SmtpSink,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    smtp_config(tmp_path, sink.port, 'security = "starttls"')
    code, _out, err = test_email(tmp_path, capsys)
    assert code == 1
    assert "TLS problem" in err and "does not offer STARTTLS" in err


def test_test_email_untrusted_certificate(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cert, key = self_signed_cert(tmp_path)  # not in $SSL_CERT_FILE: not trusted
    with SmtpSink(starttls=server_tls_context(cert, key)) as server:
        smtp_config(tmp_path, server.port, 'security = "starttls"')
        code, _out, err = test_email(tmp_path, capsys)
    assert code == 1
    assert "TLS problem" in err and "certificate is not trusted" in err


def test_test_email_broken_custom_template(tmp_path: Path, sink: SmtpSink,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mail.txt").write_text("{% for %}", encoding="utf-8")
    smtp_config(tmp_path, sink.port, 'template = "mail.txt"')
    code, _out, err = test_email(tmp_path, capsys)
    assert code == 1 and "mail.txt failed" in err
    assert sink.messages == []


# -- delivery in the pass -------------------------------------------------------------------------
@login_warning
def test_starttls_with_login_delivers(tmp_path: Path, tls_files: tuple[Path, Path],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSMON_SMTP_PASSWORD", "s3cret")
    with SmtpSink(starttls=server_tls_context(*tls_files), login=("osmon", "s3cret")) as server:
        config = smtp_config(tmp_path, server.port, 'security = "starttls"\nuser = "osmon"')
        notify.queue(config.state_dir, notify.compose(config, [DISK], T0), T0)
        assert notify.flush_outbox(config.smtp, config.state_dir, time.monotonic() + 30) == 1
        assert [m["Subject"] for m in server.messages] == ["[osmon] CRITICAL db1 disk / 97%"]


def test_implicit_tls_delivers(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    with SmtpSink(implicit_tls=server_tls_context(*tls_files)) as server:
        config = smtp_config(tmp_path, server.port, 'security = "ssl"')
        refused = notify.send_now(config.smtp, notify.compose(config, [DISK], T0))
        assert refused == {} and len(server.messages) == 1


def test_custom_text_template_gives_a_text_only_mail(tmp_path: Path, sink: SmtpSink) -> None:
    (tmp_path / "mail.txt").write_text(
        "{% for n in notifications %}{{ n.label }}|{{ n.host }}|{{ n.item }}|{{ n.value }}|"
        "{{ n.host_url }}{% endfor %}\n", encoding="utf-8")
    config = smtp_config(tmp_path, sink.port, 'template = "mail.txt"')
    msg = notify.compose(config, [DISK], T0)
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content() == "CRITICAL|db1|/|97%|https://osmon.example.org/hosts/db1\n"


def test_custom_html_template_beside_a_text_one(tmp_path: Path, sink: SmtpSink) -> None:
    (tmp_path / "mail.txt").write_text("text {{ notifications|length }}\n", encoding="utf-8")
    (tmp_path / "mail.html").write_text("<p>{{ notifications[0].message }}</p>\n",
                                        encoding="utf-8")
    config = smtp_config(tmp_path, sink.port, 'template = "mail.html"')
    evil = dataclasses.replace(DISK, message="<b>x</b>")
    msg = notify.compose(config, [evil], T0)
    assert msg.get_body(("plain",)).get_content() == "text 1\n"
    assert msg.get_body(("html",)).get_content() == "<p>&lt;b&gt;x&lt;/b&gt;</p>\n"


def test_broken_custom_template_falls_back_and_the_alert_still_goes(
        tmp_path: Path, sink: SmtpSink, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "mail.txt").write_text("{{ notifications | nosuchfilter }}", encoding="utf-8")
    config = smtp_config(tmp_path, sink.port, 'template = "mail.txt"')
    msg = notify.compose(config, [DISK], T0)
    assert "disk / on db1 is at 97%" in msg.get_body(("plain",)).get_content()
    assert any("mail.txt failed" in r.getMessage() for r in caplog.records
               if r.levelno == logging.ERROR)


def test_outbox_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           caplog: pytest.LogCaptureFixture) -> None:
    config = smtp_config(tmp_path, free_port())
    monkeypatch.setattr(notify, "MAX_OUTBOX", 3)
    names = [notify.queue(config.state_dir, notify.compose(config, [DISK], T0),
                          T0 + minutes(i)).name for i in range(5)]
    assert [p.name for p in notify.pending(config.state_dir)] == names[2:]
    assert sum("dropping the oldest" in r.getMessage() for r in caplog.records) == 2


def test_outbox_files_are_whole_messages(tmp_path: Path, sink: SmtpSink) -> None:
    config = smtp_config(tmp_path, sink.port)
    path = notify.queue(config.state_dir, notify.compose(config, [DISK], T0), T0)
    assert path.parent == config.state_dir / "outbox"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    assert b"Subject: [osmon] CRITICAL db1 disk / 97%" in path.read_bytes()


def test_a_message_rejected_for_good_does_not_block_the_others(
        tmp_path: Path, sink: SmtpSink, caplog: pytest.LogCaptureFixture) -> None:
    config = smtp_config(tmp_path, sink.port, to='["typo@example.org"]')
    first = notify.queue(config.state_dir, notify.compose(config, [DISK], T0), T0)
    config = smtp_config(tmp_path, sink.port)  # the admin fixed the address
    notify.queue(config.state_dir, notify.compose(config, [DISK], T0), T0 + minutes(1))
    sink.recorder.refuse["typo@example.org"] = "550 5.1.1 no such user"
    assert notify.flush_outbox(config.smtp, config.state_dir, time.monotonic() + 30) == 1
    assert [to for _f, to, _raw in sink.recorder.envelopes] == [["ops@example.org"]]
    assert notify.pending(config.state_dir) == []
    assert first.with_suffix(".rejected").exists()
    assert any("rejected for good" in r.getMessage() and "550" in r.getMessage()
               for r in caplog.records)


def test_a_temporary_refusal_keeps_the_message_for_later(tmp_path: Path, sink: SmtpSink) -> None:
    config = smtp_config(tmp_path, sink.port)
    notify.queue(config.state_dir, notify.compose(config, [DISK], T0), T0)
    sink.recorder.refuse["ops@example.org"] = "451 4.3.0 try again later"
    assert notify.flush_outbox(config.smtp, config.state_dir, time.monotonic() + 30) == 0
    assert len(notify.pending(config.state_dir)) == 1
    del sink.recorder.refuse["ops@example.org"]
    assert notify.flush_outbox(config.smtp, config.state_dir, time.monotonic() + 30) == 1
    assert len(sink.messages) == 1


def test_test_email_server_that_never_answers(tmp_path: Path, silent_port: int,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    smtp_config(tmp_path, silent_port, timeout_s=1)
    started = time.monotonic()
    code, _out, err = test_email(tmp_path, capsys)
    assert time.monotonic() - started < 10  # liveness, with room for a loaded machine
    assert code == 1
    assert f"not sent: no answer from 127.0.0.1:{silent_port} within 1 s" in err


def test_test_email_names_a_refused_recipient(tmp_path: Path, sink: SmtpSink,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    smtp_config(tmp_path, sink.port, to='["ops@example.org", "typo@example.org"]')
    sink.recorder.refuse["typo@example.org"] = "550 5.1.1 no such user"
    code, out, err = test_email(tmp_path, capsys)
    assert code == 1
    assert "test e-mail sent to ops@example.org through" in out
    assert "the server refused: typo@example.org (550 5.1.1 no such user)" in err
    assert [to for _f, to, _raw in sink.recorder.envelopes] == [["ops@example.org"]]


def test_a_server_that_never_answers_keeps_the_mail_and_the_pass_on_time(
        tmp_path: Path, silent_port: int) -> None:
    config = smtp_config(tmp_path, silent_port, timeout_s=1)
    notify.queue(config.state_dir, notify.compose(config, [DISK], T0), T0)
    started = time.monotonic()
    assert notify.flush_outbox(config.smtp, config.state_dir, time.monotonic() + 30) == 0
    assert time.monotonic() - started < 10
    assert len(notify.pending(config.state_dir)) == 1


def test_one_recipient_refused_for_good_the_others_get_it_once(
        tmp_path: Path, sink: SmtpSink, caplog: pytest.LogCaptureFixture) -> None:
    config = smtp_config(tmp_path, sink.port, to='["ops@example.org", "typo@example.org"]')
    notify.queue(config.state_dir, notify.compose(config, [DISK], T0), T0)
    sink.recorder.refuse["typo@example.org"] = "550 5.1.1 no such user"
    for _ in range(3):
        notify.flush_outbox(config.smtp, config.state_dir, time.monotonic() + 30)
    assert [to for _f, to, _raw in sink.recorder.envelopes] == [["ops@example.org"]]
    assert notify.pending(config.state_dir) == []
    assert any("typo@example.org (550 5.1.1 no such user)" in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)


def test_one_recipient_refused_for_now_gets_it_later_and_the_others_once(
        tmp_path: Path, sink: SmtpSink) -> None:
    config = smtp_config(tmp_path, sink.port, to='["ops@example.org", "boss@example.org"]')
    notify.queue(config.state_dir, notify.compose(config, [DISK], T0), T0)
    sink.recorder.refuse["boss@example.org"] = "452 4.2.2 mailbox full"
    assert notify.flush_outbox(config.smtp, config.state_dir, time.monotonic() + 30) == 1
    assert len(notify.pending(config.state_dir)) == 1  # a copy for boss alone
    assert notify.flush_outbox(config.smtp, config.state_dir, time.monotonic() + 30) == 0
    del sink.recorder.refuse["boss@example.org"]
    assert notify.flush_outbox(config.smtp, config.state_dir, time.monotonic() + 30) == 1
    assert notify.pending(config.state_dir) == []
    assert [to for _f, to, _raw in sink.recorder.envelopes] == [["ops@example.org"],
                                                               ["boss@example.org"]]
    first, second = sink.messages
    assert second["Message-ID"] == first["Message-ID"]
    assert second["To"] == "ops@example.org, boss@example.org"
    assert second[notify.RETRY_HEADER] is None  # our envelope note never leaves the outbox


@login_warning
def test_the_password_is_never_logged_nor_stored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "Wr0ng-s3cret-9f1c"
    monkeypatch.setenv("OSMON_SMTP_PASSWORD", secret)
    caplog.set_level(logging.DEBUG)
    with SmtpSink(login=("osmon", "right")) as server:
        config = smtp_config(tmp_path, server.port, 'user = "osmon"')
        passes = Passes(config)
        passes.run(db1=passes.ok(disks={"/": 97}))
        passes.run(db1=passes.ok(disks={"/": 97}))
        code, out, err = test_email(tmp_path, capsys)
    assert code == 1 and "authentication failed" in err
    assert any("authentication failed" in r.getMessage() for r in caplog.records)
    assert len(notify.pending(config.state_dir)) == 1
    assert secret not in caplog.text + out + err
    for path in config.settings.data_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


@login_warning
def test_test_email_with_the_password_in_a_file(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "smtp-password").write_text("s3cret\n", encoding="utf-8")
    with SmtpSink(login=("osmon", "s3cret")) as server:
        smtp_config(tmp_path, server.port, 'user = "osmon"\npassword_file = "smtp-password"')
        code, _out, _err = test_email(tmp_path, capsys)
        assert code == 0 and len(server.messages) == 1
