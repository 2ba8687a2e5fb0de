"""Time one ``osmon collect`` pass against a bare paramiko pool and parallel OpenSSH clients.

    python3 bench/bench_collect.py [--sizes 1,10,50,200] [--repeat 3] [--concurrency 32]

Starts the tests' loopback sshd (``tests/sshd.py``; as root it creates the ``osmon-test``
account), and for each N builds an inventory of N host names that are all that sshd.  Three
contenders collect the same N hosts with the same probe, parameters and concurrency, each as a
child process so that interpreter start-up and every helper process are counted:

* ``osmon``: ``python -m collector collect`` (host keys checked, samples validated, derived,
  stored, post-pass hooks run);
* ``bare``: a paramiko thread pool (connect, exec, read, close; no checks, no storage), the
  floor for a Python collector;
* ``ssh``: ``xargs -P`` running the OpenSSH client, as an admin would script it.

Runs alternate between contenders (the order rotates each round), medians are printed with
ratios to ``bare`` and the client-side CPU time per host (user + system of the child and its
descendants).  The sshd side and the probe's own start-up run on the same cores, so absolute
numbers depend on the machine; the ratios are the point.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
#: What collector.passes.probe_call.remote_command runs (for a host with python = "python3"):
#: the baselines must pay the same probe start-up.
REMOTE_COMMAND = ("sh -c 'read -r osmon_probe || exit 2; case $osmon_probe in python) exec "
                  "python3 -I -S - ;; sh) exec sh -s ;; esac; echo \"osmon: unknown probe "
                  "language\" >&2; exit 2'")

CONTENDERS = ("osmon", "bare", "ssh")
# The steady state of a pass: the collector has the previous counters, the probe never sleeps.
PARAMS = {"cpu_sample_s": 0, "network_fs": False, "checks": []}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,10,50,200",
                        help="numbers of hosts, comma-separated (default 1,10,50,200)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size (default 3)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--bare-pool", nargs=4, metavar=("PORT", "USER", "KEY", "PAYLOAD"),
                        help=argparse.SUPPRESS)  # the "bare" contender, run as a child
    args = parser.parse_args()
    if args.bare_pool:
        return bare_pool(*args.bare_pool, int(os.environ["BENCH_N"]), args.concurrency)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    import sshd as harness

    from collector.config import Host
    from collector.passes.probe_call import load_probe, python_stdin, remote_command

    assert remote_command(Host(name="h")) == REMOTE_COMMAND

    with harness.running_sshd() as server:
        work = Path(tempfile.mkdtemp(prefix="osmon-bench-"))
        try:
            payload = work / "payload.py"
            payload.write_bytes(python_stdin(PARAMS, load_probe()))
            rows = [run_size(server, work, payload, n, args.repeat, args.concurrency)
                    for n in sizes]
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows, args.concurrency)
    return 0


def run_size(server, work: Path, payload: Path, n: int, repeat: int,
             concurrency: int) -> dict[str, object]:
    case = work / f"n{n}"
    case.mkdir()
    names = [f"h{i:03d}" for i in range(1, n + 1)]
    config = server.write_hosts_toml(
        case / "hosts.toml", names,
        settings={"concurrency": concurrency, "interval_s": 600, "pass_deadline_s": 590,
                  "host_deadline_s": 300, "ssh_timeout_s": 120})
    commands = {
        "osmon": [sys.executable, "-m", "collector", "--config", str(config), "collect"],
        "bare": [sys.executable, str(Path(__file__).resolve()), "--concurrency",
                 str(concurrency), "--bare-pool", str(server.port), server.user,
                 str(server.client_key_path), str(payload)],
        "ssh": ["sh", "-c", xargs_command(server, case, payload, concurrency)],
    }
    (case / "names").write_text("\n".join(names) + "\n")
    env = {**os.environ, "BENCH_N": str(n), "PYTHONPATH": str(ROOT)}
    run_once(commands["osmon"], env, case)  # warm-up: gives every host its previous sample
    times: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    cpu: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    for round_no in range(repeat):
        order = CONTENDERS[round_no % 3:] + CONTENDERS[:round_no % 3]
        for contender in order:
            wall, cpu_s = run_once(commands[contender], env, case)
            check_result(contender, case, config, n)
            times[contender].append(wall)
            cpu[contender].append(cpu_s)
        print(f"  N={n} round {round_no + 1}: " + ", ".join(
            f"{c} {times[c][-1]:.2f} s" for c in CONTENDERS), file=sys.stderr)
    return {"n": n, "wall": {c: statistics.median(times[c]) for c in CONTENDERS},
            "cpu_ms_per_host": {c: 1000 * statistics.median(cpu[c]) / n for c in CONTENDERS}}


def xargs_command(server, case: Path, payload: Path, concurrency: int) -> str:
    out = case / "ssh-out"
    out.mkdir(exist_ok=True)
    ssh = " ".join(shlex.quote(part) for part in [
        "ssh", "-F", "/dev/null", "-p", str(server.port), "-i", str(server.client_key_path),
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={case / 'known_hosts'}", "-o", "LogLevel=ERROR",
        f"{server.user}@{server.address}", REMOTE_COMMAND])
    script = f"{ssh} < {shlex.quote(str(payload))} > {shlex.quote(str(out))}/$1"
    return (f"xargs -P {concurrency} -n 1 sh -c {shlex.quote(script)} sh "
            f"< {shlex.quote(str(case / 'names'))}")


def run_once(command: list[str], env: dict[str, str], case: Path) -> tuple[float, float]:
    """Wall time and CPU (user + system, children included) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=case, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({result.returncode}):\n{result.stderr}"
                         f"{result.stdout}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    (case / "last-stdout").write_text(result.stdout)
    return wall, cpu


def check_result(contender: str, case: Path, config: Path, n: int) -> None:
    """Every contender must really have collected every host, or its time means nothing."""
    if contender == "osmon":
        lines = (case / "data" / "state" / "passes.jsonl").read_text().splitlines()
        good = json.loads(lines[-1])["ok"]
    elif contender == "bare":
        good = int((case / "last-stdout").read_text().split()[0])
    else:
        good = 0
        for path in (case / "ssh-out").iterdir():
            with contextlib.suppress(ValueError):
                good += isinstance(json.loads(path.read_bytes()), dict)
            path.unlink()
    if good != n:
        raise SystemExit(f"{contender}: {good} of {n} hosts answered")


def bare_pool(port: str, user: str, key_path: str, payload_path: str, n: int,
              concurrency: int) -> int:
    """Connect, exec, read, close: what any paramiko collector must at least do."""
    import paramiko

    key = paramiko.Ed25519Key.from_private_key_file(key_path)
    payload = Path(payload_path).read_bytes()

    def one(_index: int) -> bool:
        sock = socket.create_connection(("127.0.0.1", int(port)), timeout=60)
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=60)
            transport.auth_publickey(user, key)
            channel = transport.open_session(timeout=60)
            channel.exec_command(REMOTE_COMMAND)
            channel.sendall(payload)
            channel.shutdown_write()
            chunks = []
            while True:
                data = channel.recv(1 << 20)
                if not data:
                    break
                chunks.append(data)
            ok = channel.recv_exit_status() == 0
            return ok and isinstance(json.loads(b"".join(chunks)), dict)
        finally:
            transport.close()

    with ThreadPoolExecutor(concurrency) as pool:
        good = sum(pool.map(one, range(n)))
    print(good)
    return 0


def print_table(rows: list[dict[str, object]], concurrency: int) -> None:
    print(f"\ncollect pass, medians (concurrency {concurrency}, {os.cpu_count()} cores)")
    header = (f"{'N':>5}  {'osmon s':>8}  {'bare s':>8}  {'ssh s':>8}  {'osmon/bare':>10}  "
              f"{'ssh/bare':>8}  {'CPU ms/host: osmon':>18}  {'bare':>6}  {'ssh':>6}")
    print(header)
    print("-" * len(header))
    for row in rows:
        wall = row["wall"]
        cpu = row["cpu_ms_per_host"]
        assert isinstance(wall, dict) and isinstance(cpu, dict)
        print(f"{row['n']:>5}  {wall['osmon']:>8.2f}  {wall['bare']:>8.2f}  {wall['ssh']:>8.2f}"
              f"  {wall['osmon'] / wall['bare']:>10.2f}  {wall['ssh'] / wall['bare']:>8.2f}"
              f"  {cpu['osmon']:>18.1f}  {cpu['bare']:>6.1f}  {cpu['ssh']:>6.1f}")


if __name__ == "__main__":
    sys.exit(main())
