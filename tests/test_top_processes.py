"""The host page's top processes: what is using the machine, not kernel threads at 0 %.

The probe sends the top ``top_n`` by CPU and by memory; on an idle host the CPU list is
filled up with processes that did nothing (kernel threads: no CPU, no memory).  The stored
``top`` leaves those out, unless fewer than ``top_n`` processes would remain.
"""

from __future__ import annotations

from collections.abc import Callable

from collector.config import Config
from collector.metrics.families.processes import derive_processes
from collector.passes import collect

Inventory = Callable[..., Config]


def proc(pid: int, name: str, cpu: float, rss: int) -> dict:
    return {"pid": pid, "user": "root", "name": name, "cmdline": "", "cpu_percent": cpu,
            "mem_percent": round(rss / 8e9 * 100, 3), "rss": rss}


BUSY = [proc(812, "nginx", 12.0, 50_000_000), proc(1500, "postgres", 3.5, 900_000_000)]
KTHREADS = [proc(pid, f"kworker/{pid}", 0.0, 0) for pid in (2, 3, 4, 5, 6)]
RESIDENT = [proc(1, "systemd", 0.0, 12_000_000), proc(1500, "postgres", 3.5, 900_000_000),
            proc(812, "nginx", 12.0, 50_000_000), proc(900, "sshd", 0.0, 8_000_000),
            proc(950, "cron", 0.0, 3_000_000), proc(960, "rsyslogd", 0.0, 6_000_000),
            proc(970, "agetty", 0.0, 2_000_000)]


def test_processes_that_did_nothing_are_left_out() -> None:
    top = derive_processes({"count": 180, "top_cpu": BUSY + KTHREADS, "top_mem": RESIDENT},
                           None, 60.0)["top"]
    names = [p["name"] for p in top]
    assert not [n for n in names if n.startswith("kworker")], names
    assert names[:2] == ["nginx", "postgres"]  # busiest first, as before
    assert len(top) == 7  # top_n is 7 here: the union still holds that many


def test_the_list_keeps_its_length_when_fewer_remain() -> None:
    """A container with three processes: idle ones fill the list up to top_n."""
    tiny = [proc(1, "tini", 0.0, 1_000_000), proc(7, "app", 2.0, 30_000_000)]
    idle = [proc(40, "sleeper", 0.0, 0), proc(41, "zombie", 0.0, 0), proc(42, "other", 0.0, 0)]
    top = derive_processes({"count": 5, "top_cpu": tiny + idle[:2], "top_mem": tiny + idle[:2]},
                           None, 60.0)["top"]
    assert [p["name"] for p in top] == ["app", "tini", "sleeper", "zombie"]  # 4 = top_n


def test_a_real_host_lists_no_idle_kernel_thread(inventory: Inventory) -> None:
    """This machine, through the real sshd: it has dozens of idle kernel threads."""
    config = inventory(["web1"])
    [outcome] = collect.run_pass(config).outcomes
    top = outcome.sample["processes"]["top"]
    assert len(top) >= 10  # top_n (10) kept
    idle = [p for p in top if not p["cpu_percent"] and not p["rss"]]
    assert idle == [], idle
