"""Hostile answers on a resident session: garbage, a line that never ends, a 100 MB answer,
an answer to another request.  Each costs that host its sample (``invalid-output``) and its
session (opened again next pass), in bounded memory, and nothing more: the other hosts of
the pass answer as usual."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sshd as harness
from resident_fixtures import (
    SETTINGS,
    inventory,
    kinds,
    run,
)

from collector.passes.sessions import SessionPool

ROOT = Path(__file__).resolve().parent.parent

#: A fake interpreter for the resident branch: it reads the bootstrap's length and source as
#: the real probe would, then answers every request line with ``ANSWER`` (Python acting on
#: ``out``, the binary stdout, and ``rid``, the request's id).
HOSTILE = """exec python3 -c '
import json, sys
b, out = sys.stdin.buffer, sys.stdout.buffer
b.read(int(b.readline()))
for line in iter(b.readline, b""):
    rid = json.loads(line)["id"]
    try:
        ANSWER
        out.flush()
    except BrokenPipeError:
        break
'
"""

#: The same, but the first request gets the real probe's answer (the source it was sent is
#: the probe): the session has answered once, so the pass's coordinator reads the next ones.
TURNCOAT = HOSTILE.replace(
    'b.read(int(b.readline()))\n',
    'probe = {"__name__": "osmon-probe"}\n'
    'exec(b.read(int(b.readline())), probe)\n'
    'resident = probe["Resident"]()\n').replace(
    "    try:\n        ANSWER\n",
    "    try:\n"
    "        if rid == 1:\n"
    "            document = resident.answer(probe[\"parse_request\"](line))[0]\n"
    "            out.write(probe[\"answer_frame\"](rid, document))\n"
    "            out.flush()\n"
    "            continue\n"
    "        ANSWER\n")

ANSWERS = {
    "garbage": 'out.write(b"<html><body>Service Unavailable</body></html>\\n")',
    "endless": 'out.write(b"osmon 1 ")\n        while True: out.write(b"7" * 65536)',
    "huge": 'out.write(b"osmon %d %d\\n" % (rid, 100 << 20) + bytes(100 << 20))',
    "lying": 'out.write(b"osmon %d 10\\n" % rid + b"x" * (100 << 20))',
    "other": 'out.write(b"osmon %d 2\\n{}" % (rid + 7))',
    "shapeless": 'out.write(b"osmon %d 9\\n[1, 2, 3]" % rid)',
}
EXPECTED = {
    "garbage": "not an answer of the probe (no frame header)",
    "endless": "not an answer of the probe (no frame header)",
    "huge": "an answer of 100 MiB, over the 4 MiB an answer may hold",
    "lying": "more output than the answer's length",
    "other": "an answer to request 8, not to 1",
    "shapeless": "wrong shape: top level: expected an object, got list",
}


def hostile_hosts(logging_sshd: harness.Sshd, tmp_path: Path,
                  script: str = HOSTILE) -> dict[str, dict[str, str]]:
    return {name: {"python": str(logging_sshd.script(
        f"{name}-{tmp_path.name}.sh", script.replace("ANSWER", answer)))}
        for name, answer in ANSWERS.items()}


def test_hostile_answers_cost_their_host_its_sample_and_session(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    config = inventory(logging_sshd, tmp_path, [*ANSWERS, "fine"],
                       hosts=hostile_hosts(logging_sshd, tmp_path))
    before = logging_sshd.logins()
    first, second = run(config, session_pool, passes=2)
    for result in (first, second):
        assert kinds(result) == {**dict.fromkeys(ANSWERS, "invalid-output"), "fine": None}
        messages = {o.host: o.error["message"] for o in result.outcomes if o.error}
        assert messages == EXPECTED
    # Every hostile session was closed and opened again; "fine" kept its one session.
    assert logging_sshd.logins() - before == 2 * len(ANSWERS) + 1
    assert len(session_pool) == 1


def test_hostile_answers_after_a_good_one_cost_the_same(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    """A session that answered once is read by the pass's coordinator itself, not by a
    worker: a host turning hostile there costs its sample and its session, nothing more."""
    config = inventory(logging_sshd, tmp_path, [*ANSWERS, "fine"],
                       hosts=hostile_hosts(logging_sshd, tmp_path, TURNCOAT))
    first, second = run(config, session_pool, passes=2)
    assert kinds(first) == dict.fromkeys([*ANSWERS, "fine"], None)
    assert kinds(second) == {**dict.fromkeys(ANSWERS, "invalid-output"), "fine": None}
    messages = {o.host: o.error["message"] for o in second.outcomes if o.error}
    assert messages == {**EXPECTED, "other": "an answer to request 9, not to 2"}
    assert len(session_pool) == 1
    third = run(config, session_pool)[0]  # new sessions: each answers well once more
    assert kinds(third) == dict.fromkeys([*ANSWERS, "fine"], None)


def test_output_between_two_requests_is_that_pass_failure(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    """A probe that writes after its answer, before the next request, is caught when the next
    request is sent: that pass is the host's failure (not hidden behind a new session, which
    would cost a login every pass), and the pass after it opens a new session."""
    chatty = TURNCOAT.replace("ANSWER", 'time.sleep(60)').replace(
        "            continue\n",
        "            time.sleep(0.2)\n"
        "            out.write(b\"late words\\n\")\n"
        "            out.flush()\n"
        "            continue\n").replace("import json, sys", "import json, sys, time")
    config = inventory(logging_sshd, tmp_path, ["chatty", "fine"], hosts={"chatty": {
        "python": str(logging_sshd.script(f"chatty-{tmp_path.name}.sh", chatty))}})
    [first] = run(config, session_pool)
    assert kinds(first) == {"chatty": None, "fine": None}
    time.sleep(1.0)  # the late words arrive
    [second] = run(config, session_pool)
    assert kinds(second) == {"chatty": "invalid-output", "fine": None}
    assert second.outcomes[0].error["message"] == "the probe wrote output between two requests"
    [third] = run(config, session_pool)
    assert kinds(third) == {"chatty": None, "fine": None}


@pytest.mark.parametrize("name", ["huge", "lying", "endless"])
def test_memory_stays_bounded_whatever_the_host_sends(
        logging_sshd: harness.Sshd, tmp_path: Path, name: str) -> None:
    """In a process of its own, so its peak RSS measures this pass alone."""
    path = logging_sshd.write_hosts_toml(tmp_path / "hosts.toml", [name],
                                   settings=SETTINGS, hosts={name: hostile_hosts(
                                       logging_sshd, tmp_path)[name]})
    code = (
        "import json, resource, sys\n"
        "from collector import config\nfrom collector.passes import collect\n"
        "from collector.passes.sessions import SessionPool\n"
        "cfg = config.load(sys.argv[1])\n"
        "pool = SessionPool(cfg.settings)\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "result = collect.run_pass(cfg, sessions=pool)\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "pool.close_all()\n"
        "print(json.dumps({'growth_kib': peak - base,\n"
        "                  'error': result.outcomes[0].sample['error']}))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["error"] == {"kind": "invalid-output", "message": EXPECTED[name]}
    assert report["growth_kib"] < 40 * 1024, report
