"""silences.json and acks.json that cannot be used as they are: only a file that does not parse
is set aside; one that cannot be read (no permission, an I/O error) or that a newer osmon wrote
is left alone, said in the history, and nothing is changed.  And ``sudo osmon silence add``
leaves files the collector's own user can use: run as root with a second user, as in real life.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sshd as harness
from mail_fixtures import Passes, SmtpSink, make_config

from collector.alerts import muting_store
from collector.alerts import state as alert_store
from collector.alerts.muting_input import SilenceRequest
from collector.errors import MutingError

ROOT = Path(__file__).resolve().parent.parent
NEWER = json.dumps({"version": 2, "silences": [{"id": "future", "what": "a new shape"}]})


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def one(tmp_path: Path, sink: SmtpSink) -> Passes:
    return Passes(make_config(tmp_path, hosts=("db1",), smtp_port=sink.port))


def add(passes: Passes) -> str:
    request = SilenceRequest(host="db1", duration="1h", reason="kernel upgrade")
    return muting_store.add_silence(passes.config, request, author="alice", now=passes.now,
                                    zone=None).id


def state_lines(passes: Passes) -> list[str]:
    return [r["message"] for r in alert_store.history(passes.state_dir) if r["event"] == "state"]


def test_silences_of_a_newer_osmon_are_left_alone_and_said(one: Passes, sink: SmtpSink) -> None:
    one.state_dir.mkdir(parents=True)
    path = one.state_dir / muting_store.SILENCES_FILE
    path.write_text(NEWER)
    one.run(db1=one.ok(disks={"/": 97}))
    assert path.read_text() == NEWER  # not set aside, not rewritten
    assert not path.with_name(path.name + ".corrupt").exists()
    [said] = state_lines(one)
    assert "written by a newer osmon" in said and "left as it is" in said
    assert len(sink.messages) == 1  # loud: its silences could not be applied
    with pytest.raises(MutingError, match="written by a newer osmon") as raised:
        add(one)
    assert "nothing was changed" in str(raised.value)
    assert path.read_text() == NEWER


def test_an_unreadable_acks_file_is_left_alone_and_silences_still_change(one: Passes) -> None:
    one.state_dir.mkdir(parents=True)
    acks = one.state_dir / muting_store.ACKS_FILE
    acks.mkdir()  # reading it fails with an OSError that is not "missing", even as root
    (acks / "keep").write_text("x")
    sid = add(one)  # silences do not need the acknowledgements' file
    one.run(db1=one.ok(disks={"/": 97}))
    assert (acks / "keep").exists() and not acks.with_name(acks.name + ".corrupt").exists()
    assert [s.id for s in muting_store.read(one.state_dir)[0].silences] == [sid]
    with pytest.raises(MutingError, match=r"acks\.json: cannot read it"):
        muting_store.acknowledge(one.config, "db1", "disk", "/", "known", author="bob",
                                 now=one.now)


def test_a_corrupt_file_is_still_set_aside(one: Passes) -> None:
    one.state_dir.mkdir(parents=True)
    (one.state_dir / muting_store.ACKS_FILE).write_text("{not json")
    add(one)
    one.run(db1=one.ok())
    assert (one.state_dir / (muting_store.ACKS_FILE + ".corrupt")).read_text() == "{not json"


# -- as root, with the collector's own user: `sudo osmon silence add` -------------------------
@pytest.fixture
def collector_user() -> Iterator[tuple[str, Path]]:
    """The second user the collector runs as, and a folder it owns that it can reach (pytest's
    own temporary folders are root's alone)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as two users (CI runs as root)")
    user = harness.ensure_test_account()
    entry = pwd.getpwnam(user)
    folder = Path(tempfile.mkdtemp(prefix="osmon-muting-owner-"))
    try:
        os.chmod(folder, 0o755)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        yield user, folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


#: osmon's code and this interpreter's packages, for a Python the other user can run.
PATHS = os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"],
                         sysconfig.get_paths()["platlib"]])


def as_user(user: str) -> dict[str, Any]:
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def interpreter_for(user: str) -> str:
    """This Python if the user can run it, else the system's of the same version (this one
    may live under root's home, as pyenv's does)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        try:
            tried = subprocess.run([candidate, "-c", "import collector.cli, paramiko, psutil"],
                                   capture_output=True, timeout=60, env={"PYTHONPATH": PATHS},
                                   cwd="/", **as_user(user))
        except OSError:
            continue
        if tried.returncode == 0:
            return candidate
    pytest.skip(f"no {version} that {user} may run with osmon's packages")


def osmon(config: Path, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=PATHS, HOME=str(config.parent), USER="alice",
               LOGNAME="alice")
    env.pop("SUDO_USER", None)
    python = interpreter_for(user) if user is not None else sys.executable
    return subprocess.run([python, "-m", "collector", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=90, env=env,
                          cwd=config.parent, **(as_user(user) if user is not None else {}))


def write_config(folder: Path, user: str, sink: SmtpSink) -> Path:
    entry = pwd.getpwnam(user)
    path = folder / "hosts.toml"
    path.write_text(
        '[settings]\ndata_dir = "data"\n\n[certfr]\nenabled = false\n\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\nfrom = "osmon@example.org"\n'
        'to = ["ops@example.org"]\n\n'
        '[[hosts]]\nname = "central"\nlocal = true\n'
        'thresholds = {memory = {warning = 0.001, critical = 0.002, for = 1}}\n')
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def owners(state: Path) -> dict[str, str]:
    return {p.name: pwd.getpwuid(p.stat().st_uid).pw_name for p in sorted(state.iterdir())
            if not p.name.startswith(".")}


def test_sudo_osmon_silence_add_leaves_files_the_collector_can_use(
        collector_user: tuple[str, Path], sink: SmtpSink) -> None:
    user, folder = collector_user
    config = write_config(folder, user, sink)
    added = osmon(config, "silence", "add", "--host", "central", "--for", "2h", "--reason",
                  "memory upgrade")  # as root, before any pass: data/ and state/ made too
    assert added.returncode == 0, added.stderr
    sid = added.stdout.splitlines()[-1]
    state = folder / "data" / "state"
    assert owners(folder / "data")["state"] == owners(folder)["data"] == user
    mine = owners(state)
    assert {mine[n] for n in (muting_store.SILENCES_FILE, muting_store.LOCK_FILE,
                              alert_store.HISTORY_FILE)} == {user}, mine
    collected = osmon(config, "collect", user=user)
    assert collected.returncode == 0, collected.stderr
    ack = osmon(config, "ack", "central", "memory", "--reason", "ordered RAM")  # as root
    assert ack.returncode == 0, ack.stderr
    assert owners(state)[muting_store.ACKS_FILE] == user
    for _ in range(2):
        collected = osmon(config, "collect", user=user)
        assert collected.returncode == 0, collected.stderr
    assert sink.messages == []  # silenced (memory is over its tiny threshold)
    assert [s.id for s in muting_store.read(state)[0].silences] == [sid]
    assert not list(state.glob("*.corrupt"))
    removed = osmon(config, "silence", "remove", sid, user=user)  # the dashboard's user too
    assert removed.returncode == 0, removed.stderr


def test_a_file_the_collector_cannot_read_is_left_alone_and_said(
        collector_user: tuple[str, Path], sink: SmtpSink) -> None:
    """As an older osmon left it under sudo: root:root 0640, and the lock too."""
    user, folder = collector_user
    config = write_config(folder, user, sink)
    assert osmon(config, "collect", user=user).returncode == 0
    state = folder / "data" / "state"
    silences = state / muting_store.SILENCES_FILE
    silences.write_text(json.dumps({"version": 1, "silences": []}))
    os.chmod(silences, 0o640)  # root's, as the temporary file of an atomic write was
    collected = osmon(config, "collect", user=user)
    assert collected.returncode == 0, collected.stderr
    assert silences.exists() and silences.stat().st_uid == 0  # left as it is
    assert not list(state.glob("*.corrupt"))
    said = [r["message"] for r in alert_store.history(state) if r["event"] == "state"]
    assert any("silences.json: cannot read it (Permission denied)" in m for m in said), said
    refused = osmon(config, "silence", "add", "--host", "central", "--for", "1h", "--reason",
                    "x", user=user)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    assert "nothing was changed" in refused.stderr
    fixed = osmon(config, "silence", "add", "--host", "central", "--for", "1h", "--reason",
                  "memory upgrade")  # root again: the files are given back to the user
    assert fixed.returncode == 0, fixed.stderr
    assert owners(state)[muting_store.SILENCES_FILE] == user


# -- the alert history: appended by the pass, the CLI and the dashboard at once ---------------
def _append_many(state_dir: Path, writer: int, count: int) -> None:
    older = state_dir / (alert_store.HISTORY_FILE + ".1")
    for seq in range(count):
        alert_store.append_history(state_dir, [{
            "ts": "2026-11-21T22:00:00Z", "host": f"w{writer}", "metric": "state",
            "item": None, "event": "silence-added", "level": "info", "value": seq,
            "threshold": None, "message": "x" * 40}])
        with contextlib.suppress(FileNotFoundError):
            if older.stat().st_size <= alert_store.HISTORY_MAX_BYTES:  # a fresh file put there
                sys.exit(f"{older} holds {older.stat().st_size} bytes: the rotated one is lost")


def test_appends_and_rotations_from_several_processes_lose_no_event_in_between(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``osmon silence`` and the dashboard append to the history beside the pass: two writers
    rotating at once must not rename a fresh file over the full one just rotated (losing it:
    ``.1`` is always a whole rotated file).  Each writer's events may start late (the rotation
    keeps one older file), never skip."""
    monkeypatch.setattr(alert_store, "HISTORY_MAX_BYTES", 3000)  # rotate every ~20 lines
    context = multiprocessing.get_context("fork")  # the small size goes with the children
    writers = [context.Process(target=_append_many, args=(tmp_path, w, 2000)) for w in range(6)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=90)
        assert writer.exitcode == 0
    seen: dict[str, list[int]] = {}
    for record in reversed(alert_store.history(tmp_path, limit=100_000)):
        seen.setdefault(record["host"], []).append(record["value"])
    for host, values in seen.items():
        assert values == list(range(values[0], 2000)), f"{host} lost events in between"
