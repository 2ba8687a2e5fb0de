"""Every network step of a pass ends within what is left of the pass deadline, whatever the
peer does: an SMTP server or a feed that answers one byte at a time (a real TCP server,
:mod:`trickle_fixtures`) holds neither the pass nor ``osmon test-email``, the mail stays in
the outbox, and the log names the real limit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from mail_fixtures import make_config
from trickle_fixtures import HTTP_HEADERS, SMTP_GREETING, TLS_RECORD, Script, TrickleServer

from collector import config as config_mod
from collector.alerts import certfr
from collector.alerts import mail as notify
from collector.alerts.certfr_feed import FeedError

ROOT = Path(__file__).resolve().parent.parent
PASS_DEADLINE_S = 4
#: What a pass may overrun its deadline by: process start-up and the pass log, not SMTP.
SLACK_S = 4

SMTP_TRICKLES: dict[str, tuple[str, bytes, Script, bytes]] = {
    # name: (security, sent at once, script, then trickled for ever)
    "greeting": ("none", b"", [], SMTP_GREETING),
    "a reply": ("none", b"220 osmon.test ready\r\n", [(b"EHLO", b"250 osmon.test\r\n")],
                b"250-still thinking\r\n"),
    "the TLS handshake": ("ssl", b"", [(b"", TLS_RECORD)], b"\0"),
    "the STARTTLS handshake": (
        "starttls", b"220 osmon.test ready\r\n",
        [(b"EHLO", b"250-osmon.test\r\n250 STARTTLS\r\n"), (b"STARTTLS", b"220 go\r\n"),
         (b"", TLS_RECORD)],  # after the ClientHello: smtplib reads lines ahead
        b"\0"),
}


def osmon(*args: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    return run, time.monotonic() - started


@pytest.mark.parametrize("step", sorted(SMTP_TRICKLES))
def test_a_trickling_smtp_server_holds_the_pass_no_longer_than_its_deadline(
        tmp_path: Path, refused_port: int, step: str) -> None:
    security, prefix, script, trickle = SMTP_TRICKLES[step]
    with TrickleServer(script, trickle, prefix=prefix) as server:
        # timeout_s is longer than the whole pass: only the deadline can stop the exchange.
        path = tmp_path / "hosts.toml"
        path.write_text(
            f'[settings]\ndata_dir = "data"\npass_deadline_s = {PASS_DEADLINE_S}\n'
            'host_deadline_s = 2\nssh_timeout_s = 1\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "{security}"\n'
            'from = "osmon@example.org"\nto = ["ops@example.org"]\ntimeout_s = 30\n'
            '[alerts]\ndown_after = 1\n[certfr]\nenabled = false\n'
            f'[[hosts]]\nname = "db1"\naddress = "127.0.0.1"\nport = {refused_port}\n'
            'user = "monitor"\n', encoding="utf-8")
        config = config_mod.load(path)
        run, took = osmon("--config", str(config.path), "collect", timeout=60)
    assert run.returncode == 0, run.stderr
    assert took < PASS_DEADLINE_S + SLACK_S, run.stderr
    assert "e-mail cannot be sent: gave up at the pass deadline: 127.0.0.1:" in run.stderr
    assert "within 30 s" not in run.stderr
    assert len(notify.pending(config.state_dir)) == 1  # kept for the next pass


def test_a_trickling_feed_is_let_go_at_its_budget_not_only_abandoned(tmp_path: Path) -> None:
    script: Script = [(b"GET", b"HTTP/1.1 200 OK\r\n")]
    with TrickleServer(script, HTTP_HEADERS) as server:
        started = time.monotonic()
        with pytest.raises(FeedError, match="no complete answer within 2.0 s"):
            certfr.fetch(f"http://127.0.0.1:{server.port}/feed", budget_s=2.0,
                         max_bytes=1 << 20)
        assert time.monotonic() - started < 3.5
        deadline = time.monotonic() + 10
        while not server.closed_after and time.monotonic() < deadline:
            time.sleep(0.05)
        # The connection itself was closed at the budget: no thread left reading it.
        assert server.closed_after and server.closed_after[0] < 3.5


def test_test_email_gives_up_against_a_trickling_server(tmp_path: Path) -> None:
    with TrickleServer([], SMTP_GREETING) as server:
        config = make_config(tmp_path, extra=(
            f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nfrom = "osmon@example.org"\n'
            'to = ["ops@example.org"]\ntimeout_s = 1\n'))
        run, took = osmon("--config", str(config.path), "test-email", timeout=60)
    assert run.returncode == 1
    assert took < 3 * 1 + SLACK_S
    assert (f"not sent: gave up at 3 s (3 x timeout_s): 127.0.0.1:{server.port} had not "
            "finished answering") in run.stderr
