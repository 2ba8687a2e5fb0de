"""Heavy requests from anyone cannot stall the dashboard: sample exports run a few at a time
(the others get 503 and Retry-After), and charts whose rollups are missing build them once,
a day at a time, for every chart.  Real HTTP requests, at once, to the app served by waitress
as ``osmon serve`` serves it."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from process_fixtures import wait_for
from web_fixtures import Site, make_site, sample

from collector.store.samples import encode_line
from collector.times import utc_now
from web import api, create_app
from web.cmd_serve import DashboardServer, serve

DAYS = 6


def write_days(site: Site, host: str, days: int) -> int:
    """``days`` days of one sample a minute up to now, each day file written in one go."""
    now = utc_now().replace(second=0, microsecond=0)
    by_day: dict[str, list[bytes]] = {}
    moment = now - timedelta(days=days)
    count = 0
    while moment <= now:
        line = encode_line(sample(host, moment, cpu=float(moment.minute), disk=50.0))
        by_day.setdefault(moment.date().isoformat(), []).append(line)
        moment += timedelta(minutes=1)
        count += 1
    folder = site.store.host_dir(host)
    folder.mkdir(parents=True, exist_ok=True)
    for day, lines in by_day.items():
        (folder / f"{day}.jsonl").write_bytes(b"".join(lines))
    return count


@contextmanager
def served(site: Site) -> Iterator[tuple[DashboardServer, Flask]]:
    app = create_app(site.config)
    server = serve(site.config, "127.0.0.1", 0, app=app)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server, app
    finally:
        server.close()
        thread.join(30)


def fetch(url: str, timeout: float = 60) -> tuple[int, dict[str, str], bytes, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read(), \
                time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read(), time.monotonic() - started


def all_at_once(urls: list[str]) -> list[tuple[int, dict[str, str], bytes, float]]:
    results: list[Any] = [None] * len(urls)
    gate = threading.Barrier(len(urls))

    def one(index: int) -> None:
        gate.wait(30)
        results[index] = fetch(urls[index])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


class WatchedSlots(threading.BoundedSemaphore):
    """The app's export slots, as they are, telling the test how many are held."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self._count = threading.Lock()
        self.held = 0
        self.all_taken = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        got = super().acquire(blocking, timeout)
        if got:
            with self._count:
                self.held += 1
                if self.held == api.MAX_EXPORTS:
                    self.all_taken.set()
        return got

    def release(self, n: int = 1) -> None:
        with self._count:
            self.held -= n
        super().release(n)


def test_twelve_exports_at_once_leave_the_pages_responsive(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "central", "local": True}])
    written = write_days(site, "central", DAYS)
    with served(site) as (server, app):
        slots = app.extensions["osmon.export_slots"] = WatchedSlots(api.MAX_EXPORTS)
        exports = [server.url + "api/hosts/central/samples?range=30d"] * 12
        results: list[Any] = []
        storm = threading.Thread(target=lambda: results.extend(all_at_once(exports)))
        storm.start()
        assert slots.all_taken.wait(60), "the exports never got under way"
        page = fetch(server.url)
        storm.join(120)
        # Once the storm is over, every slot is free again (none was lost), and an export
        # is served by the same server.
        wait_for(lambda: slots.held == 0, "the export slots to be released")
        assert fetch(server.url + "api/hosts/central/samples?range=1h")[0] == 200
    assert page[0] == 200 and page[3] < 10
    done = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(done) + len(refused) == 12 and done and refused
    for _status, headers, body, _took in refused:
        assert headers["Retry-After"] == str(api.EXPORT_RETRY_S)
        assert "sample exports are running" in json.loads(body)["error"]
    for _status, _headers, body, _took in done:
        assert len(json.loads(body)["samples"]) == written  # whole, not cut short


def test_charts_without_rollups_build_them_once_for_every_chart(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "central", "local": True}])
    write_days(site, "central", DAYS)
    assert not (site.config.settings.data_dir / "rollups").exists()
    metrics = ("cpu", "memory", "disk", "net", "swap", "load")
    with served(site) as (server, app):
        urls = [f"{server.url}hosts/central/charts/{m}.svg?range=30d" for m in metrics]
        tracemalloc.start()
        try:
            results = all_at_once(urls)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        built = app.extensions["osmon.built_rollups"]
    assert [r[0] for r in results] == [200] * len(metrics)
    assert all(b"<svg" in r[2] for r in results)
    # Every day file of the range built once (the open day may be built again as it grows),
    # not once per chart.
    assert DAYS + 1 <= built.builds <= DAYS + 2
    # A day at a time: the month's raw samples are never in memory together.
    assert peak < 40 * 1024 * 1024, f"{peak >> 20} MiB"
