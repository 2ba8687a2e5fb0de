"""Cost of one probe run, measured the way the SSH path runs it, and of collect_local().

    python bench/bench_probe.py [-n 30] [--python /usr/bin/python3]

Each run pipes `OSMON_PARAMS = '<json>'` plus the probe source into `<python> -`, as the
collector does over SSH. Reported per mode: wall time (median, p95), CPU time of the child
(user+sys from RUSAGE_CHILDREN, interpreter start-up included) and the probe's own CPU time
(`self_timing`: from main() to the end, start-up excluded). A baseline row shows what the
interpreter alone costs (`-c pass`). Target: at most 40 ms CPU per steady-state run.

The shell probe (remote_probe/probe.sh, for hosts without Python) is run the same way: its
parameters and source piped into `<shell> -s`, under BusyBox ash with only BusyBox applets
on PATH and under dash with Debian's tools (mawk), with the previous pass's counters as the
collector sends them. Its CPU column counts every process it forks (all are reaped children).
Target: at most 30 ms CPU per run. The "dispatch" row is the Python probe through the remote
command osmon really runs (`sh -c 'read ...; exec python3 -I -S -'`), to show what the one
fixed command per host costs over `python3 -I -S -`.
Figures only, no assertions: they depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.config import Host  # noqa: E402
from collector.passes.probe_call import python_stdin, remote_command  # noqa: E402
from collector.passes.sh_probe import load_sh_probe, sh_probe_stdin  # noqa: E402
from collector.transport.local import collect_local  # noqa: E402

PROBE_SOURCE = (ROOT / "remote_probe" / "probe.py").read_text()
# Alternative transport: CPython's stdin tokenizer (`python3 -`) is slow on a 40 kB source;
# reading stdin into a string and compiling it costs far less CPU.
EXEC_STDIN = "import sys; exec(compile(sys.stdin.read(), 'osmon-probe', 'exec'))"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: list[str], params: dict | None, stdin: bytes | None = None,
             env: dict[str, str] | None = None) -> tuple[float, float, float | None]:
    """(wall s, child CPU s, in-probe CPU s) of one run of `command` fed the probe on stdin;
    params None runs `command` as is (the interpreter baseline); `stdin` replaces the Python
    probe's (then there is no in-probe figure)."""
    cpu_before = children_cpu()
    started = time.perf_counter()
    if params is None and stdin is None:
        subprocess.run(command, check=True)
        inner = None
    elif stdin is not None:
        subprocess.run(command, input=stdin, stdout=subprocess.PIPE, check=True, env=env)
        inner = None
    else:
        source = f"OSMON_PARAMS = {json.dumps(params)!r}\n" + PROBE_SOURCE
        done = subprocess.run(command, input=source.encode(), stdout=subprocess.PIPE,
                              check=True)
        inner = json.loads(done.stdout)["timing"]["cpu_s"]
    return time.perf_counter() - started, children_cpu() - cpu_before, inner


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def row(label: str, walls: list[float], cpus: list[float], inner: list[float]) -> str:
    inner_ms = f"{statistics.median(inner) * 1000:8.1f}" if inner else "       -"
    return (f"{label:<38} {statistics.median(walls) * 1000:8.1f} {p95(walls) * 1000:8.1f} "
            f"{statistics.median(cpus) * 1000:8.1f} {inner_ms}")


def bench_probe(command: list[str], label: str, params: dict | None, runs: int,
                stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
    walls, cpus, inner = [], [], []
    for _ in range(runs):
        wall, cpu, own = run_once(command, params, stdin, env)
        walls.append(wall)
        cpus.append(cpu)
        if own is not None:
            inner.append(own)
    return row(label, walls, cpus, inner)


def bench_local(label: str, call: Callable[[], object], runs: int) -> str:
    walls, cpus = [], []
    for _ in range(runs):
        cpu_before, started = time.process_time(), time.perf_counter()
        call()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_before)
    return row(label, walls, cpus, cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=30)
    default_python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    parser.add_argument("--python", default=default_python,
                        help="interpreter to run the probe with (default: %(default)s)")
    args = parser.parse_args(argv)
    python = [args.python]
    version = subprocess.run([*python, "--version"], stdout=subprocess.PIPE,
                             check=True).stdout.decode().strip()
    with open("/proc/loadavg") as loadavg:
        processes = loadavg.read().split()[3].split("/")[1]
    print(f"probe via `{args.python} -` ({version}), {args.runs} runs per row, "
          f"{os.cpu_count()} CPUs, {len([p for p in os.listdir('/proc') if p.isdigit()])} "
          f"processes ({processes} tasks)\n")
    print(f"{'mode':<38} {'wall ms':>8} {'p95 ms':>8} {'CPU ms':>8} {'own ms':>8}")
    print(f"{'':<38} {'median':>8} {'':>8} {'median':>8} {'median':>8}")
    steady = {"cpu_sample_s": 0, "self_timing": True}
    first = {"cpu_sample_s": 0.25, "self_timing": True}
    print(bench_probe([*python, "-c", "pass"], "interpreter only (-c pass)", None, args.runs))
    print(bench_probe([*python, "-"], "python3 -, steady (cpu_sample_s=0)", steady, args.runs))
    print(bench_probe([*python, "-I", "-S", "-"], "python3 -I -S -, steady", steady,
                      args.runs))
    print(bench_probe([*python, "-I", "-S", "-c", EXEC_STDIN],
                      "python3 -I -S -c exec(stdin), steady", steady, args.runs))
    print(bench_probe([*python, "-"], "python3 -, first pass (0.25 s)", first,
                      max(3, args.runs // 3)))
    dispatch = python_stdin(steady, PROBE_SOURCE.encode())
    print(bench_probe(["sh", "-c", remote_command(Host(name="h", python=args.python))],
                      "dispatch: sh -c ... exec python3 -I -S -", None, args.runs, dispatch))
    for row in shell_rows(args.runs):
        print(row)
    print(bench_local("collect_local(), steady (in-process)",
                      lambda: collect_local({"cpu_sample_s": 0}), args.runs))
    print(bench_local("collect_local(), first pass (0.25 s)",
                      lambda: collect_local({"cpu_sample_s": 0.25}), max(3, args.runs // 3)))
    print("\nCPU ms: the child's user+sys, start-up included. own ms: CPU inside main() "
          "(self_timing), start-up excluded; for collect_local, its process_time.")
    return 0


def shell_rows(runs: int) -> list[str]:
    """The shell probe under BusyBox (applets only) and dash (Debian tools), with the counters
    of a previous run as proc_prev, as in a steady state."""
    script = load_sh_probe()
    busybox = shutil.which("busybox")
    applets = Path(tempfile.mkdtemp(prefix="osmon-bench-busybox-"))
    setups = [("sh probe: dash -s (Debian tools, mawk)", ["dash", "-s"],
               {"PATH": "/usr/local/bin:/usr/bin:/bin"})]
    if busybox:
        subprocess.run([busybox, "--install", "-s", str(applets)], check=True)
        setups.insert(0, ("sh probe: busybox sh -s (BusyBox only)", [busybox, "sh", "-s"],
                          {"PATH": str(applets)}))
    rows = []
    try:
        for label, command, env in setups:
            first = subprocess.run(command, input=sh_probe_stdin({}, script), env=env,
                                   stdout=subprocess.PIPE, check=True)
            counters = json.loads(first.stdout)["processes"]["counters"]
            stdin = sh_probe_stdin({"cpu_sample_s": 0, "network_fs": False,
                                    "proc_prev": counters}, script)
            rows.append(bench_probe(command, label, None, runs, stdin, env))
    finally:
        shutil.rmtree(applets, ignore_errors=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
