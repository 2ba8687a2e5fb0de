"""Secrets in process command lines never leave the host: the probe (and the central host's
in-process collection, with the same function) masks them before they are sent, and a host
may keep its command lines to itself altogether (``command_lines = false``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from collector.config import Config
from collector.passes import collect
from remote_probe.probe import SECRET_MASK, mask_command_line

Inventory = Callable[..., Config]
H = SECRET_MASK


@pytest.mark.parametrize(("argv", "shown"), [
    (["app", "--password=hunter2", "--user=bob"], f"app --password={H} --user=bob"),
    (["app", "--password", "hunter2", "-v"], f"app --password {H} -v"),
    (["redis-server", "--requirepass", "foo"], f"redis-server --requirepass {H}"),
    (["x", "--api-key", "K1", "--passive=yes"], f"x --api-key {H} --passive=yes"),
    (["env", "PGPASSWORD=pw", "AWS_SECRET_ACCESS_KEY=k", "HOME=/root"],
     f"env PGPASSWORD={H} AWS_SECRET_ACCESS_KEY={H} HOME=/root"),
    (["java", "-Dspring.datasource.password=xx", "-jar", "a.jar"],
     f"java -Dspring.datasource.password={H} -jar a.jar"),
    (["psql", "postgresql://app:s3cr3t@db:5432/x?sslmode=require"],
     f"psql postgresql://app:{H}@db:5432/x?sslmode=require"),
    (["x", "https://user@host/path", "amqp://a:b@c/"], f"x https://user@host/path amqp://a:{H}@c/"),
    (["curl", "-H", "Authorization: Bearer abc.def", "https://x/?token=t&a=1"],
     f"curl -H Authorization: Bearer {H} https://x/?token={H}&a=1"),
    (["curl", "-H", "Authorization:", "Basic", "dXNlcjpwYXNz"],
     f"curl -H Authorization: Basic {H}"),
    (["mysql", "-uroot", "-pS3cret", "db"], f"mysql -uroot -p{H} db"),
    (["/usr/sbin/nginx", "-g", "daemon off;"], "/usr/sbin/nginx -g daemon off;"),
])
def test_common_secret_patterns_are_masked(argv: list[str], shown: str) -> None:
    assert " ".join(mask_command_line(argv)) == shown


SECRETS = ("hunter2", "s3cr3tPW", "tok3nXYZ")


@pytest.fixture
def busy_with_secrets() -> Iterator[int]:
    """A process busy on a CPU (so it is among the top processes) whose command line holds
    three kinds of secret.  Stopped by its own pid."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass",
                              f"--password={SECRETS[0]}",
                              f"postgresql://app:{SECRETS[1]}@db/app",
                              "--token", SECRETS[2]])
    time.sleep(0.3)
    yield child.pid
    child.kill()
    child.wait()


def stored(config: Config, host: str) -> bytes:
    return b"".join(p.read_bytes() for p in
                    sorted((config.settings.data_dir / "hosts" / host).glob("*.jsonl")))


def test_secrets_in_command_lines_never_reach_the_store(
        inventory: Inventory, busy_with_secrets: int) -> None:
    config = inventory(["web1", "central"], hosts={"central": {"local": True}})
    result = collect.run_pass(config)
    assert result.failed == 0, [o.describe() for o in result.failures()]
    for host in ("web1", "central"):  # over SSH (the probe) and in-process (psutil)
        line = stored(config, host)
        assert not any(secret.encode() in line for secret in SECRETS)
        top = json.loads(line)["processes"]["top"]
        [busy] = [p for p in top if p["pid"] == busy_with_secrets]
        assert f"--password={H}" in busy["cmdline"]
        assert f"postgresql://app:{H}@db/app --token {H}" in busy["cmdline"]


def test_a_host_can_keep_its_command_lines(inventory: Inventory,
                                           busy_with_secrets: int) -> None:
    config = inventory(["web1", "central"], hosts={"central": {"local": True,
                                                               "command_lines": False},
                                                   "web1": {"command_lines": False}})
    collect.run_pass(config)
    for host in ("web1", "central"):
        top = json.loads(stored(config, host))["processes"]["top"]
        assert top and all(p["cmdline"] == "" for p in top)
        assert any(p["pid"] == busy_with_secrets and p["name"] for p in top)
