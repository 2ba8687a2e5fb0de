"""``osmon run`` (resident sessions) beside cron's ``osmon collect`` and a node_exporter scrape.

    python3 bench/bench_resident.py [--sizes 20,200] [--passes 4] [--interval 10]

For each N: a private loopback sshd (``tests/sshd.py``, its sessions' orphans adopted so the
whole tree is counted) and N host names that are all that sshd.  At steady state (after a
warm-up pass), per host and per pass:

* sshd side: CPU of the sshd's process tree (every live descendant plus what it reaped);
* collector: CPU of the ``osmon run`` process (or of each ``osmon collect`` process);
* the pass's wall time (``duration_s`` of state/passes.jsonl);
* logins, counted in the sshd's log ("Accepted publickey");
* for ``osmon run``, its RSS and threads with N sessions open.

Then Debian's ``prometheus-node-exporter`` (installed with apt-get when missing and root):
the CPU its process spends per scrape of ``/metrics``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
TICK = os.sysconf("SC_CLK_TCK")
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


def cpu_s(pid: int, children: bool = True) -> float:
    """utime + stime (+ reaped children's) of one process, in seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def tree_cpu_s(server) -> float:
    return cpu_s(server.process.pid) + sum(cpu_s(pid) for pid, _ in server.descendants())


def status(pid: int) -> dict[str, int]:
    found = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                found[key] = int(value.split()[0])
    return found


def passes_logged(data: Path) -> list[dict[str, object]]:
    path = data / "state" / "passes.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def wait_until(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def bench_run(server, case: Path, n: int, passes: int, interval: int) -> dict[str, float]:
    """``osmon run --no-web`` over N hosts: a warm-up pass, then ``passes`` measured."""
    config = write_config(server, case, n, interval)
    data = case / "data"
    service = subprocess.Popen([sys.executable, "-m", "collector", "--config", str(config),
                                "run", "--no-web"], cwd=case, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(passes_logged(data)) >= 2, "two passes", 600)
        logins0, sshd0 = server.logins(), tree_cpu_s(server)
        mine0, seen = cpu_s(service.pid, children=False), len(passes_logged(data))
        wait_until(lambda: len(passes_logged(data)) >= seen + passes, "the passes",
                   (passes + 2) * interval + 120)
        sshd1, mine1, logins1 = tree_cpu_s(server), cpu_s(service.pid, False), server.logins()
        memory = status(service.pid)
        logged = passes_logged(data)[seen:seen + passes]
    finally:
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=120)
    bad = [p for p in logged if p.get("failed")]
    if bad:
        raise SystemExit(f"osmon run N={n}: failed hosts in {bad}")
    per = passes * n
    return {"sshd_ms": 1000 * (sshd1 - sshd0) / per, "collector_ms": 1000 * (mine1 - mine0) / per,
            "wall_s": statistics.median(float(p["duration_s"]) for p in logged),
            "logins": (logins1 - logins0) / per, "rss_mib": memory["VmRSS"] / 1024,
            "threads": memory["Threads"]}


def bench_cron(server, case: Path, n: int, passes: int) -> dict[str, float]:
    """``osmon collect`` (a new process each pass, as cron runs it), same N."""
    config = write_config(server, case, n, 60)
    command = [sys.executable, "-m", "collector", "--config", str(config), "collect"]
    subprocess.run(command, cwd=case, check=True, capture_output=True, timeout=600)  # warm-up
    logins0, sshd0 = server.logins(), tree_cpu_s(server)
    mine, walls = 0.0, []
    for _ in range(passes):
        before = os.times()
        subprocess.run(command, cwd=case, check=True, capture_output=True, timeout=600)
        after = os.times()
        mine += (after.children_user - before.children_user) + \
            (after.children_system - before.children_system)
        walls.append(float(passes_logged(case / "data")[-1]["duration_s"]))
    per = passes * n
    return {"sshd_ms": 1000 * (tree_cpu_s(server) - sshd0) / per, "collector_ms": 1000 * mine / per,
            "wall_s": statistics.median(walls), "logins": (server.logins() - logins0) / per}


def write_config(server, case: Path, n: int, interval: int) -> Path:
    if case.exists():
        shutil.rmtree(case)
    case.mkdir(parents=True)
    return server.write_hosts_toml(
        case / "hosts.toml", n,
        settings={"interval_s": interval, "pass_deadline_s": interval - 2,
                  "host_deadline_s": interval - 2, "ssh_timeout_s": min(10, interval - 3),
                  "concurrency": 32})


def bench_node_exporter(scrapes: int) -> dict[str, float] | None:
    if not os.path.exists(NODE_EXPORTER) and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "prometheus-node-exporter"],
                       check=False, capture_output=True, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not os.path.exists(NODE_EXPORTER):
        print("node_exporter: not installed (apt-get install prometheus-node-exporter)",
              file=sys.stderr)
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exporter = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_until(lambda: _scrape(url) is not None, "node_exporter", 30)
        for _ in range(3):
            _scrape(url)
        before = cpu_s(exporter.pid)
        for _ in range(scrapes):
            _scrape(url)
            time.sleep(0.2)  # scrapes apart, as Prometheus does
        return {"cpu_ms": 1000 * (cpu_s(exporter.pid) - before) / scrapes,
                "rss_mib": status(exporter.pid)["VmRSS"] / 1024}
    finally:
        exporter.terminate()
        exporter.wait(30)


def _scrape(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read()
    except OSError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,200")
    parser.add_argument("--passes", type=int, default=4, help="measured passes per mode")
    parser.add_argument("--interval", type=int, default=10, help="interval_s of osmon run")
    args = parser.parse_args()
    import sshd as harness

    rows = []
    work = Path(tempfile.mkdtemp(prefix="osmon-bench-resident-"))
    try:
        for n in (int(s) for s in args.sizes.split(",") if s):
            with harness.running_sshd(log_level="INFO", subreaper=True) as server:
                run = bench_run(server, work / f"run{n}", n, args.passes, args.interval)
                print(f"  N={n} run: {run}", file=sys.stderr)
                cron = bench_cron(server, work / f"cron{n}", n, args.passes)
                print(f"  N={n} cron: {cron}", file=sys.stderr)
            rows.append((n, run, cron))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    exporter = bench_node_exporter(scrapes=50)
    print_table(rows, exporter)
    return 0


def print_table(rows, exporter) -> None:
    print("\nper host and pass, steady state (loopback sshd, one core pair shared by all)")
    header = (f"{'N':>5}  {'mode':<14}{'sshd CPU ms':>12}{'collector ms':>14}{'pass s':>9}"
              f"{'logins':>8}")
    print(header)
    print("-" * len(header))
    for n, run, cron in rows:
        for mode, row in (("osmon run", run), ("osmon collect", cron)):
            print(f"{n:>5}  {mode:<14}{row['sshd_ms']:>12.2f}{row['collector_ms']:>14.2f}"
                  f"{row['wall_s']:>9.2f}{row['logins']:>8.2f}")
    if exporter is not None:
        print(f"node_exporter: {exporter['cpu_ms']:.2f} ms CPU per scrape, "
              f"{exporter['rss_mib']:.1f} MiB RSS")
    print("\nosmon run's memory and threads with N sessions open")
    for n, run, _cron in rows:
        print(f"{n:>5} sessions: {run['rss_mib']:.1f} MiB RSS, {run['threads']} threads")
    if len(rows) >= 2:
        (n0, a, _), (n1, b, _) = rows[0], rows[-1]
        per_mib = (b["rss_mib"] - a["rss_mib"]) / (n1 - n0)
        per_thread = (b["threads"] - a["threads"]) / (n1 - n0)
        base = a["rss_mib"] - per_mib * n0
        for n in (1000, 10000):
            print(f"{n:>5} sessions (projected): {base + per_mib * n:.0f} MiB RSS, "
                  f"{a['threads'] + per_thread * (n - n0):.0f} threads "
                  f"({per_mib * 1024:.0f} KiB and {per_thread:.2f} threads per session)")


if __name__ == "__main__":
    sys.exit(main())
