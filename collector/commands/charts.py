"""``osmon charts --out DIR [--range R]``: every chart as a static SVG file, plus an index.

For people who do not run the dashboard: a cron job can write the charts into a directory a
plain web server (or a file browser) shows.  Layout of DIR::

    index.html                        links to everything, host names HTML-escaped
    all/<metric>-<range>.svg          all hosts combined
    hosts/<host>/<metric>-<range>.svg one per host, metric (and check) and range

Each file is replaced atomically, so a reader never sees half a chart.  Quiet unless stdout is
a terminal, like every command cron runs.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path
from urllib.parse import quote

from collector.config import load_config
from collector.store.built_rollups import BuiltRollups
from collector.store.samples import Store
from collector.store.statefile import atomic_write_bytes
from collector.times import utc_now
from collector.views import charts
from collector.views.chart_cache import ChartCache


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="directory to write the SVG files and index.html into")
    parser.add_argument("--range", dest="ranges", action="append",
                        choices=[*charts.RANGES, "all"], metavar="RANGE",
                        help=f"time range: {', '.join(charts.RANGES)} or all (repeatable; "
                             "default 24h)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    store = Store(config.settings.data_dir)
    ranges = args.ranges or ["24h"]
    if "all" in ranges:
        ranges = list(charts.RANGES)
    ranges = list(dict.fromkeys(ranges))
    out: Path = args.out
    now = utc_now()
    hosts = [h.name for h in config.enabled_hosts]
    metrics = {h.name: list(charts.METRICS) + [f"check.{c.name}" for c in config.checks_for(h)]
               for h in config.enabled_hosts}
    total = len(ranges) * (len(charts.METRICS) + sum(len(m) for m in metrics.values()))
    colors = charts.assign_colors([h.name for h in config.hosts])
    cache: ChartCache[charts.Chart] = ChartCache()
    built = BuiltRollups()  # rollups the files lack: built once for all the charts
    done = 0
    for range_name in ranges:
        for metric in charts.METRICS:
            chart = charts.render_combined_chart(store, hosts, metric, range_name, now,
                                                 cache=cache, colors=colors, built=built)
            atomic_write_bytes(out / "all" / f"{metric}-{range_name}.svg", chart.svg, 0o644)
            done += 1
        for host in hosts:
            for metric in metrics[host]:
                chart = charts.render_host_chart(store, host, metric, range_name, now,
                                                 cache=cache, color=colors[host], built=built)
                atomic_write_bytes(out / "hosts" / host / f"{metric}-{range_name}.svg",
                                   chart.svg, 0o644)
                done += 1
                _progress(done, total)
    atomic_write_bytes(out / "index.html", index_html(hosts, metrics, ranges).encode("utf-8"),
                       0o644)
    if sys.stdout.isatty():
        print(f"\rwrote {done} charts and index.html to {out}")
    return 0


def _progress(done: int, total: int) -> None:
    if sys.stdout.isatty():
        sys.stdout.write(f"\rcharts: {done}/{total}")
        sys.stdout.flush()


def index_html(hosts: list[str], metrics: dict[str, list[str]], ranges: list[str]) -> str:
    """A plain page of the charts; every name is escaped (text) and quoted (URLs)."""
    def img(path: str, alt: str) -> str:
        return (f'<a href="{html.escape(path)}"><img src="{html.escape(path)}" '
                f'alt="{html.escape(alt)}" width="800" loading="lazy"></a>')

    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>osmon charts</title>",
             "<style>body{font-family:sans-serif;margin:1em 2em}img{max-width:100%;"
             "display:block;margin:.5em 0}</style></head><body>", "<h1>osmon charts</h1>"]
    parts.append("<nav><ul>" + "".join(
        f'<li><a href="#host-{html.escape(quote(h))}">{html.escape(h)}</a></li>'
        for h in hosts) + "</ul></nav>")
    for range_name in ranges:
        parts.append(f"<h2>All hosts, last {html.escape(range_name)}</h2>")
        parts += [img(f"all/{quote(m)}-{quote(range_name)}.svg", f"all hosts {m} {range_name}")
                  for m in charts.METRICS]
    for host in hosts:
        parts.append(f'<h2 id="host-{html.escape(quote(host))}">{html.escape(host)}</h2>')
        for range_name in ranges:
            parts += [img(f"hosts/{quote(host)}/{quote(m)}-{quote(range_name)}.svg",
                          f"{host} {m} {range_name}") for m in metrics[host]]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
