"""Sharded collectors: N central boxes share one hosts.toml, each takes the hosts that
rendezvous hashing gives its shard, and everything it shows or judges covers only those."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from collector import cli
from collector import config as config_mod
from collector.alerts import state as alert_store
from collector.config import Config, Shard, parse_shard, shard_of
from collector.errors import ConfigError
from collector.passes import collect
from collector.store import passlog
from collector.times import utc_now
from collector.views.status_report import build_report, render

ROOT = Path(__file__).resolve().parent.parent
Inventory = Callable[..., Config]
NAMES = [f"h{i:03d}" for i in range(1, 11)]


def osmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def collected(config: Config) -> set[str]:
    hosts = config.settings.data_dir / "hosts"
    return {p.name for p in hosts.iterdir()} if hosts.exists() else set()


# -- the assignment -------------------------------------------------------------------------------
def test_a_shard_is_written_k_of_n_and_nonsense_is_refused_with_the_reason() -> None:
    assert parse_shard("2/3") == Shard(2, 3) and str(parse_shard(" 1 / 1 ")) == "1/1"
    for text, reason in (("0/3", "between 1 and 3"), ("4/3", "does not exist"),
                         ("1/0", "between 1 and"), ("2", "K/N"), ("a/b", "K/N"),
                         ("1/3/4", "K/N")):
        with pytest.raises(ValueError, match=reason):
            parse_shard(text)


def test_the_assignment_is_the_same_on_every_machine_and_python() -> None:
    """Every box must compute the same shards from the names alone: a keyed BLAKE2b digest,
    never the per-process salted hash().  These values were computed once; if they ever
    change, two boxes running different osmon versions would collect the same hosts."""
    assert [shard_of(n, 2) for n in NAMES] == [2, 1, 1, 2, 1, 2, 2, 2, 1, 1]
    assert [shard_of(n, 3) for n in NAMES] == [2, 3, 1, 2, 1, 2, 2, 3, 1, 1]
    assert [shard_of("web1", n) for n in (1, 2, 3, 4, 5, 10)] == [1, 2, 3, 4, 5, 9]
    code = "from collector.config import shard_of; print(shard_of('db2', 10))"
    child = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, env={"PYTHONHASHSEED": "12345"})
    assert child.stdout.strip() == str(shard_of("db2", 10)) == "3"


def test_adding_a_shard_moves_about_one_in_n_hosts_and_only_into_the_new_shard() -> None:
    names = [f"host{i:04d}.example.org" for i in range(2000)]
    for count in (1, 2, 3, 7):
        before = {n: shard_of(n, count) for n in names}
        after = {n: shard_of(n, count + 1) for n in names}
        moved = [n for n in names if before[n] != after[n]]
        assert all(after[n] == count + 1 for n in moved)
        share = len(moved) / len(names)
        assert abs(share - 1 / (count + 1)) < 0.05, (count, share)
        sizes = Counter(after.values())
        assert min(sizes.values()) > 0.7 * len(names) / (count + 1), sizes


def test_hosts_toml_names_a_bad_shard_with_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('[settings]\nshard = "3/2"\n[[hosts]]\nname = "c"\nlocal = true\n')
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    assert str(caught.value) == f"{path}: [settings]: 'shard': shard 3 of 2 does not exist: " \
                                "K must be between 1 and 2"


def test_status_of_a_shard_says_when_only_other_shards_have_the_tag(tmp_path: Path) -> None:
    """``osmon status --tag`` on a shard: a tag held only by the other shards' hosts is not a
    typo, and an empty shard is not an empty config."""
    theirs = next(n for n in NAMES if shard_of(n, 2) == 2)
    path = tmp_path / "hosts.toml"
    path.write_text(f'[settings]\ndata_dir = "{tmp_path / "data"}"\nshard = "1/2"\n' + "".join(
        f'[[hosts]]\nname = "{n}"\nlocal = true\n'
        + ('tags = ["db"]\n' if n == theirs else "") for n in NAMES))
    config = config_mod.load(path)
    assert render(build_report(config, utc_now(), "db")).splitlines()[-1] == (
        "(no host of shard 1/2 has the tag 'db')")
    assert render(build_report(config, utc_now(), "nosuch")).splitlines()[-1] == (
        "(no host has the tag 'nosuch')")
    path.write_text(f'[settings]\ndata_dir = "{tmp_path / "data"}"\nshard = "1/2"\n'
                    f'[[hosts]]\nname = "{theirs}"\nlocal = true\n')
    assert render(build_report(config_mod.load(path), utc_now())).splitlines()[-1] == (
        "(no enabled host in shard 1/2)")


# -- collection over the test sshd -------------------------------------------------------------
def test_two_shards_collect_disjoint_halves_and_a_third_takes_only_from_them(
        inventory: Inventory, tmp_path: Path) -> None:
    configs = {}
    for k in (1, 2):  # shard 1 by [settings], shard 2 by --shard on the command line
        (tmp_path / f"s{k}").mkdir()
        settings = {"data_dir": str(tmp_path / f"s{k}" / "data")}
        if k == 1:
            settings["shard"] = "1/2"
        configs[k] = inventory(NAMES, settings=settings)
        (tmp_path / "hosts.toml").rename(tmp_path / f"s{k}" / "hosts.toml")
    result = osmon("--config", str(tmp_path / "s1" / "hosts.toml"), "collect")
    assert result.returncode == 0, result.stderr
    result = osmon("--config", str(tmp_path / "s2" / "hosts.toml"), "collect", "--shard", "2/2")
    assert result.returncode == 0, result.stderr
    one, two = collected(configs[1]), collected(configs[2])
    assert one and two and not one & two
    assert one | two == set(NAMES)
    for k, hosts in ((1, one), (2, two)):
        last = passlog.last_pass(configs[k].state_dir)
        assert last is not None
        assert (last["shard"], last["hosts"], last["ok"]) == (f"{k}/2", len(hosts), len(hosts))
        # The alert engine never heard of the other shard's hosts: none is "silent" here.
        state, _problem = alert_store.load_state(configs[k].state_dir)
        assert set(state["hosts"]) == hosts

    thirds = {}
    for k in (1, 2, 3):
        config = inventory(NAMES, settings={"data_dir": str(tmp_path / f"t{k}"),
                                            "shard": f"{k}/3"})
        collect.run_pass(config)
        thirds[k] = collected(config)
    assert set().union(*thirds.values()) == set(NAMES)
    assert sum(len(h) for h in thirds.values()) == len(NAMES)
    assert thirds[3], "the new shard took no host"
    assert thirds[1] <= one and thirds[2] <= two  # nothing moved between the old shards
    assert (one - thirds[1]) | (two - thirds[2]) == thirds[3]


def test_status_and_check_of_a_shard_say_which_shard_and_what_the_others_hold(
        inventory: Inventory, tmp_path: Path) -> None:
    config = inventory(NAMES, settings={"shard": "1/2"})
    collect.run_pass(config)
    ours = {n for n in NAMES if shard_of(n, 2) == 1}
    report = build_report(config, utc_now())
    assert {line.status.name for line in report.hosts} == ours
    # Collected just now: never "stale" nor "down" (a busy machine may be over a threshold).
    assert not {line.status.status for line in report.hosts} & {"stale", "down"}
    text = render(report)
    assert f"shard 1/2: {len(ours)} host(s) here, {10 - len(ours)} on the other shards" in text
    status = osmon("--config", str(tmp_path / "hosts.toml"), "status", "--json")
    doc = json.loads(status.stdout)
    assert doc["shard"] == {"shard": "1/2", "hosts": len(ours), "other_hosts": 10 - len(ours)}
    assert {h["name"] for h in doc["hosts"]} == ours
    # --shard on the command line wins over [settings]: shard 2 has never collected here.
    other = json.loads(osmon("--config", str(tmp_path / "hosts.toml"), "status", "--json",
                             "--shard", "2/2").stdout)
    assert {h["name"] for h in other["hosts"]} == set(NAMES) - ours
    assert {h["status"] for h in other["hosts"]} == {"stale"}

    check = osmon("--config", str(tmp_path / "hosts.toml"), "check")
    assert check.returncode == 0, check.stdout + check.stderr
    rows = {line.split()[0]: line.split()[1] for line in check.stdout.splitlines()[1:]
            if line.split() and line.split()[0] in NAMES}
    assert rows == {n: "1/2" for n in ours}
    assert f"not tried: {10 - len(ours)} host(s) of the other shards (this is shard 1/2;" \
        in check.stdout
    every = osmon("--config", str(tmp_path / "hosts.toml"), "check", "--all-shards")
    assert every.returncode == 0, every.stdout + every.stderr
    rows = {line.split()[0]: line.split()[1] for line in every.stdout.splitlines()[1:]
            if line.split() and line.split()[0] in NAMES}
    assert rows == {n: f"{shard_of(n, 2)}/2" for n in NAMES}
    assert "SHARD" in every.stdout.splitlines()[0]


def test_a_bad_shard_option_is_a_usage_error() -> None:
    result = osmon("collect", "--shard", "5/4")
    assert result.returncode == 2
    assert "shard 5 of 4 does not exist" in result.stderr


# -- silences and acknowledgements on a shard -----------------------------------------------------
def test_a_silence_or_ack_of_another_shards_host_is_refused_naming_that_shard(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It would be accepted here and do nothing while the shard that owns the host keeps
    mailing: refused, saying where it belongs.  A tag silence covers this shard's hosts."""
    ours = next(n for n in NAMES if shard_of(n, 2) == 1)
    theirs = next(n for n in NAMES if shard_of(n, 2) == 2)
    path = tmp_path / "hosts.toml"
    path.write_text(f'[settings]\ndata_dir = "{tmp_path / "data"}"\nshard = "1/2"\n' + "".join(
        f'[[hosts]]\nname = "{n}"\naddress = "192.0.2.1"\ntags = ["db"]\n' for n in NAMES))

    def run(*args: str) -> tuple[int, str]:
        code = cli.main(["--config", str(path), *args])
        out, err = capsys.readouterr()
        return code, out + err

    code, said = run("silence", "add", "--host", theirs, "--for", "1h", "--reason", "reboot")
    assert code == 2
    assert (f"{theirs} belongs to shard 2/2, not to this one (1/2): run this on the box of "
            "shard 2/2") in said
    assert not (tmp_path / "data" / "state" / "silences.json").exists()
    code, said = run("silence", "add", "--host", theirs, "--for", "1h", "--reason", "reboot",
                     "--shard", "2/2")  # on the right box (or with its --shard)
    assert code == 0, said
    assert run("silence", "add", "--host", ours, "--for", "1h", "--reason", "reboot")[0] == 0
    assert run("silence", "add", "--tag", "db", "--for", "1h", "--reason", "upgrade")[0] == 0
    code, said = run("ack", theirs, "disk", "/", "--reason", "known")
    assert code == 2 and f"{theirs} belongs to shard 2/2, not to this one (1/2)" in said
