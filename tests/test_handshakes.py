"""Handshakes that survive a busy sshd: ``MaxStartups`` (sshd's default ``10:30:100`` drops
connections at random beyond ten unauthenticated ones) against 40 hosts that are one sshd
(containers behind one address, a jump host), a server that drops the first connections,
and the gate that keeps at most ``max_handshakes`` in flight."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sshd as harness

from collector import config as config_mod
from collector.passes import collect
from collector.transport.failures import TIMEOUT, SshFailure
from collector.transport.gate import HandshakeGate


@pytest.fixture(scope="module")
def busy_sshd() -> Iterator[harness.Sshd]:
    with harness.running_sshd(max_startups="10:30:100", log_level="INFO") as started:
        yield started


def test_forty_hosts_on_one_default_sshd_all_answer_in_one_pass(busy_sshd: harness.Sshd,
                                                                tmp_path: Path) -> None:
    path = busy_sshd.write_hosts_toml(tmp_path / "hosts.toml", 40,
                                      settings={"concurrency": 32, "host_deadline_s": 40,
                                                "pass_deadline_s": 50})
    result = collect.run_pass(config_mod.load(path))
    assert [o.describe() for o in result.failures()] == []
    assert result.ok == 40


class DroppingProxy:
    """A TCP proxy to ``port`` that accepts and at once closes its first ``drops``
    connections, as sshd does beyond MaxStartups; it counts every connection.

    ``close`` leaves nothing behind: the listener is shut down (a close alone would not wake
    the blocked ``accept`` on Linux, and the port would go on listening), the relaying
    threads are ended and joined, and only then are their sockets closed, so no thread can
    use a descriptor number that was closed under it and given to a later test's socket."""

    def __init__(self, port: int, drops: int) -> None:
        self.port, self.drops, self.connections = port, drops, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections <= self.drops:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.extend((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                self._start(_pipe, source, sink)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(timeout=10)  # no connection is taken in after this
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=10)
        self.listener.close()
        for sock in sockets:
            sock.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Relay one direction until it ends; the sockets are closed by the proxy's close."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("command", ["collect", "run"])
def test_connections_dropped_before_the_banner_are_tried_again(
        sshd: harness.Sshd, tmp_path: Path, command: str) -> None:
    proxy = DroppingProxy(sshd.port, drops=3)
    try:
        path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1"],
                                     hosts={"web1": {"port": proxy.address}})
        text = sshd.known_hosts_line().replace(str(sshd.port), str(proxy.address), 1)
        (tmp_path / "known_hosts").write_text(text)
        config = config_mod.load(path)
        if command == "run":
            from collector.passes.sessions import SessionPool

            pool = SessionPool(config.settings)
            try:
                result = collect.run_pass(config, sessions=pool)
            finally:
                pool.close_all()
        else:
            result = collect.run_pass(config)
        assert result.failed == 0, result.outcomes[0].describe()
        assert proxy.connections == 4
    finally:
        proxy.close()


def test_a_refused_key_is_never_tried_again(sshd: harness.Sshd, tmp_path: Path) -> None:
    proxy = DroppingProxy(sshd.port, drops=0)
    try:
        wrong = harness.generate_key(tmp_path / "wrong_key")
        path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1"], hosts={
            "web1": {"port": proxy.address, "identity_file": str(wrong)}})
        text = sshd.known_hosts_line().replace(str(sshd.port), str(proxy.address), 1)
        (tmp_path / "known_hosts").write_text(text)
        result = collect.run_pass(config_mod.load(path))
        assert result.outcomes[0].error is not None
        assert result.outcomes[0].error["kind"] == "auth"
        assert proxy.connections == 1
    finally:
        proxy.close()


def test_a_server_that_keeps_dropping_fails_within_the_host_deadline(
        sshd: harness.Sshd, tmp_path: Path) -> None:
    proxy = DroppingProxy(sshd.port, drops=10 ** 6)
    try:
        path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1"],
                                     settings={"host_deadline_s": 4},
                                     hosts={"web1": {"port": proxy.address}})
        started = time.monotonic()
        result = collect.run_pass(config_mod.load(path))
        assert time.monotonic() - started < 4 + 3
        error = result.outcomes[0].error
        assert error is not None and error["kind"] == "unreachable"
        assert "closed the connection before the SSH handshake" in error["message"]
        assert proxy.connections > 2  # tried again, with back-off, then gave up
    finally:
        proxy.close()


def test_the_gate_holds_at_most_its_limit_in_flight() -> None:
    gate = HandshakeGate(2, hold_s=30)
    inside, most = 0, 0
    lock = threading.Lock()

    def handshake() -> None:
        nonlocal inside, most
        with gate.slot(time.monotonic() + 30):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.05)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=handshake) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most == 2


def test_a_slow_handshake_stops_counting_after_its_hold_time() -> None:
    """Ten silent hosts must not hold up a whole pass."""
    gate = HandshakeGate(1, hold_s=0.2)
    with gate.slot(time.monotonic() + 5):  # a handshake that never ends
        started = time.monotonic()
        with gate.slot(time.monotonic() + 5):
            waited = time.monotonic() - started
    assert 0.15 < waited < 2


def test_no_slot_by_the_deadline_is_a_timeout() -> None:
    gate = HandshakeGate(1, hold_s=30)
    with gate.slot(time.monotonic() + 5), pytest.raises(SshFailure) as caught, \
            gate.slot(time.monotonic() + 0.1):
        pass
    assert caught.value.kind == TIMEOUT and "max_handshakes" in caught.value.message
