"""Real servers on loopback for the alerting tests, and builders of configs and samples.

* :class:`SmtpSink`: an aiosmtpd server that keeps what it receives; it can be stopped and
  started again on the same port (the "SMTP down, then up" case), require a login, or speak
  TLS (STARTTLS or implicit) with a throw-away certificate.
* :class:`FeedServer`: ``http.server`` in a thread serving the CERT-FR feed and its failure
  modes: HTTP 500, a body that trickles, a server that never answers, an entity bomb.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from collector import config as config_mod
from collector.alerts import hook as alerting
from collector.store.samples import Store
from collector.times import format_ts

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "certfr"
FEED_XML = (FIXTURES / "alerte-feed.xml").read_bytes()
T0 = dt.datetime(2026, 11, 21, 22, 0, tzinfo=dt.timezone.utc)

ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title>
<guid>https://example.org/x</guid></item></channel></rss>
"""


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- SMTP -----------------------------------------------------------------------------------------
class _Recorder:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        #: Recipients refused with this answer, e.g. ``{"typo@example.org": "550 no such user"}``.
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


class SmtpSink:
    """``with SmtpSink() as sink:`` a real SMTP server on 127.0.0.1:``sink.port``."""

    def __init__(self, *, login: tuple[str, str] | None = None,
                 starttls: ssl.SSLContext | None = None,
                 implicit_tls: ssl.SSLContext | None = None) -> None:
        self.port = free_port()
        self.login = login
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.recorder = _Recorder()
        self._controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        kwargs: dict[str, Any] = {}
        if self.login is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if self.starttls is not None:
            kwargs.update(tls_context=self.starttls, require_starttls=True)
        if self.implicit_tls is not None:
            kwargs.update(ssl_context=self.implicit_tls)
        self._controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port,
                                      **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        assert self.login is not None
        ok = (auth_data.login.decode(), auth_data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)

    @property
    def messages(self) -> list[EmailMessage]:
        return [BytesParser(policy=policy.default).parsebytes(raw)
                for _f, _t, raw in self.recorder.envelopes]

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost, and its key."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# -- HTTP feed ------------------------------------------------------------------------------------
@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    mode: str = "static"  # static | hang | trickle
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = "application/rss+xml; charset=utf-8"
    #: False: no Content-Length, the body ends when the connection closes (HTTP/1.0).
    send_length: bool = True


@dataclass
class FeedServer:
    """``with FeedServer() as feed:`` serves ``feed.routes[path]`` on 127.0.0.1."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                if route.mode == "hang":
                    server.release.wait(60)
                    return
                if route.mode == "trickle":
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    try:
                        while not server.release.wait(0.05):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                    except OSError:
                        pass  # the client gave up, as it should
                    return
                if route.status == 200 and route.etag and \
                        self.headers.get("If-None-Match") == route.etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                if route.send_length:
                    self.send_header("Content-Length", str(len(route.body)))
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)
                self.end_headers()
                with contextlib.suppress(OSError):  # the client stopped reading (size cap)
                    self.wfile.write(route.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for p, _h in self.requests if p == path)

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)


def rss(items: list[dict[str, str]]) -> bytes:
    """A feed in the CERT-FR shape from ``{"title","link","guid","pubDate","description"}``."""
    from xml.sax.saxutils import escape

    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
             "<title>CERT-FR</title><link>https://www.cert.ssi.gouv.fr/</link>"
             "<description>test</description>"]
    for item in items:
        parts.append("<item>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in item.items())
                     + "</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def alert_item(number: int, title: str, date: str) -> dict[str, str]:
    url = f"https://www.cert.ssi.gouv.fr/alerte/CERTFR-2026-ALE-{number:03d}/"
    return {"title": title, "link": url, "guid": url, "pubDate": date,
            "description": f"Alerte {number}."}


# -- config and samples ---------------------------------------------------------------------------
def make_config(tmp_path: Path, *, hosts: tuple[str, ...] = ("db1",), smtp_port: int | None = None,
                feed_url: str | None = None, certfr_options: str = "",
                extra: str = "", host_options: dict[str, str] | None = None,
                smtp_options: str = "", smtp_timeout_s: float = 10) -> config_mod.Config:
    """A real hosts.toml in ``tmp_path``; CERT-FR off unless ``feed_url`` is given.
    ``host_options`` adds TOML lines to a ``[[hosts]]`` table, by host name."""
    lines = ['[settings]', 'data_dir = "data"', '']
    if smtp_port is not None:
        lines += ['[smtp]', 'host = "127.0.0.1"', f'port = {smtp_port}',
                  'from = "osmon@example.org"', 'to = ["ops@example.org", "boss@example.org"]',
                  f'timeout_s = {smtp_timeout_s}', smtp_options, '']
    if feed_url is not None:
        lines += ['[certfr]', f'feed_url = "{feed_url}"', certfr_options or 'timeout_s = 10',
                  '']
    else:
        lines += ['[certfr]', 'enabled = false', '']
    lines += ['[web]', 'public_url = "https://osmon.example.org/"', '']
    lines += [extra, '']
    for name in hosts:
        lines += ['[[hosts]]', f'name = "{name}"', 'address = "192.0.2.1"', 'user = "monitor"',
                  'port = 22', (host_options or {}).get(name, ''), '']
    path = tmp_path / "hosts.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return config_mod.load(path)


def ok_sample(host: str, when: dt.datetime, *, cpu: float = 10.0, memory: float = 20.0,
              swap: float = 0.0, disks: dict[str, float] | None = None, load1: float = 0.1,
              count: int = 4, **extra: Any) -> dict[str, Any]:
    disks = {"/": 50.0} if disks is None else disks
    sample = {"v": 1, "ts": format_ts(when), "host": host, "ok": True, "error": None,
              "collect": {"transport": "ssh", "duration_s": 0.4},
              "cpu": {"count": count, "percent": cpu, "per_core": [cpu] * count,
                      "load": [load1, load1, load1]},
              "memory": {"total": 8 << 30, "percent": memory},
              "swap": {"total": 2 << 30, "percent": swap},
              "disks": [{"mount": m, "percent": p} for m, p in disks.items()],
              "errors": {}}
    sample.update(extra)
    return sample


def failed_sample(host: str, when: dt.datetime, kind: str = "timeout",
                  message: str = "no answer within 10 s (connect)") -> dict[str, Any]:
    return {"v": 1, "ts": format_ts(when), "host": host, "ok": False,
            "error": {"kind": kind, "message": message},
            "collect": {"transport": "ssh", "duration_s": 10.0}}


def passes(start: dt.datetime, count: int, step_s: int = 60) -> Iterator[dt.datetime]:
    for i in range(count):
        yield start + dt.timedelta(seconds=i * step_s)


class Passes:
    """Calls the alert hook the way the collection pass does, one minute apart by default."""

    def __init__(self, config: config_mod.Config) -> None:
        self.config = config
        self.store = Store(config.settings.data_dir)
        self.now = T0

    def run(self, deadline_s: float = 60.0, **samples: dict) -> None:
        alerting.on_pass(self.config, self.store, samples, self.now,
                         time.monotonic() + deadline_s)
        self.now += minutes(1)

    def ok(self, host: str = "db1", **values: Any) -> dict:
        return ok_sample(host, self.now, **values)

    def failed(self, host: str = "db1", kind: str = "timeout") -> dict:
        return failed_sample(host, self.now, kind)

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir
