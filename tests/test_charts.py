"""Rendered charts, read back from the SVG as a person would read them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from chart_fixtures import (
    SVG_NS,
    T0,
    every,
    legend,
    parse_svg,
    percent_scale,
    runs,
    sample,
    series_colors,
    write_fast,
    x_labels,
    y_axis,
)

from collector.store import rollup
from collector.store.samples import Store
from collector.views import charts
from collector.views.chart_cache import ChartCache

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = '</text><script>alert(1)</script>'
#: More text a host may send: markup, the end of a <script>, the end of a CDATA section.
MORE_HOSTILE = ("<img src=x onerror=alert(1)>", "</script>", "]]>", "]]><title>x</title>")


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(tmp_path)


def _hour(store: Store, host: str = "web1", **kw) -> datetime:
    """An hour of samples ending just before the returned 'now'."""
    write_fast(store, host, [sample(t, host=host, **kw) for t in every(T0, 60)])
    return T0 + timedelta(minutes=59, seconds=30)


def test_public_names() -> None:
    assert charts.METRICS == ("cpu", "memory", "swap", "disk", "load", "net", "pressure")
    assert list(charts.RANGES) == ["1h", "6h", "24h", "7d", "30d"]
    assert charts.RANGES["30d"] == timedelta(days=30)


@pytest.mark.parametrize(("metric", "range_name"), [("bogus", "1h"), ("cpu", "2h"),
                                                    ("cpu", ""), ("check.a/b", "1h")])
def test_unknown_metric_or_range_is_a_value_error(store: Store, metric: str,
                                                  range_name: str) -> None:
    with pytest.raises(ValueError):
        charts.render_host_chart(store, "web1", metric, range_name, T0)
    with pytest.raises(ValueError):
        charts.render_combined_chart(store, ["web1"], metric, range_name, T0)


@pytest.mark.parametrize("host", ["ghost", "../../etc", "<b>"])
def test_an_unknown_host_is_a_chart_saying_no_data(store: Store, host: str) -> None:
    chart = charts.render_host_chart(store, host, "cpu", "24h", T0)
    root = parse_svg(chart.svg)
    texts = [e.text for e in root.iter(f"{SVG_NS}text")]
    assert "no data in the last 24h" in texts
    assert chart.newest is None


@pytest.mark.parametrize("range_name", list(charts.RANGES))
@pytest.mark.parametrize("metric", list(charts.METRICS))
def test_every_chart_renders_the_data(store: Store, metric: str, range_name: str) -> None:
    now = _hour(store, disks=[("/", 42.0)], net=[("eth0", 1500.0, 500.0)])
    chart = charts.render_host_chart(store, "web1", metric, range_name, now)
    root = parse_svg(chart.svg)
    assert chart.newest == "2026-11-21T12:59:00Z"
    assert legend(root), "a chart with data has a legend"
    assert any(pieces for pieces in runs(root)), "and at least one line"


def test_percent_axis_is_0_to_100_with_units(store: Store) -> None:
    root = parse_svg(charts.render_host_chart(store, "web1", "cpu", "1h", _hour(store)).svg)
    assert [text for _, text in y_axis(root)] == ["0%", "25%", "50%", "75%", "100%"]
    (line,) = runs(root, percent_scale(root))
    values = [v for piece in line for _, v in piece]
    assert len(values) >= 30 and all(v == pytest.approx(10.0, abs=0.01) for v in values)


def test_rates_are_in_base_1000_units(store: Store) -> None:
    now = _hour(store, net=[("eth0", 1_200_000.0, 300_000.0), ("eth1", 300_000.0, 0.0)])
    root = parse_svg(charts.render_host_chart(store, "web1", "net", "1h", now).svg)
    assert [t for _, t in y_axis(root)] == ["0 B/s", "500 kB/s", "1 MB/s", "1.5 MB/s"]
    assert legend(root) == ["received", "sent"]


def test_bytes_are_in_base_1024_units(store: Store) -> None:
    checks = {"db": {"state": 0, "perf": {"size": {"value": 3.0, "uom": "GB"}}}}
    now = _hour(store, checks=checks)
    root = parse_svg(charts.render_host_chart(store, "web1", "check.db", "1h", now).svg)
    assert [t for _, t in y_axis(root)] == ["0 B", "1 GiB", "2 GiB", "3 GiB"]
    assert legend(root) == ["size"]


@pytest.mark.parametrize(("range_name", "pattern", "count"), [
    ("1h", r"^\d\d:\d0$", 6), ("6h", r"^\d\d:00$", 6), ("24h", r"^\d\d:00$", 6),
    ("7d", r"^\d\d/\d\d$", 7), ("30d", r"^\d\d/\d\d$", 6)])
def test_time_labels_are_few_formatted_by_range_and_apart(store: Store, range_name: str,
                                                          pattern: str, count: int) -> None:
    root = parse_svg(charts.render_host_chart(store, "web1", "cpu", range_name,
                                              _hour(store)).svg)
    labels = x_labels(root)
    assert count <= len(labels) <= count + 1  # both ends when the window is aligned
    assert all(__import__("re").match(pattern, text) for _, text in labels), labels
    positions = [x for x, _ in labels]
    assert min(b - a for a, b in zip(positions, positions[1:])) > 80  # px: no overlap


def test_a_ten_minute_hole_is_drawn_as_a_gap(store: Store) -> None:
    write_fast(store, "web1", [sample(t) for t in every(T0, 20)]
               + [sample(t) for t in every(T0 + timedelta(minutes=30), 20)])
    now = T0 + timedelta(minutes=50)
    for range_name in ("1h", "6h"):
        (line,) = runs(parse_svg(charts.render_host_chart(store, "web1", "cpu", range_name,
                                                          now).svg))
        assert len(line) == 2, range_name


def test_a_dead_host_is_a_break_not_a_flat_line(store: Store) -> None:
    write_fast(store, "db2", [sample(t, cpu=50.0, ok=not 20 <= i < 23)
                              for i, t in enumerate(every(T0, 60))])
    root = parse_svg(charts.render_host_chart(store, "db2", "cpu", "1h",
                                              T0 + timedelta(minutes=59, seconds=30)).svg)
    (line,) = runs(root)
    assert len(line) == 2


def test_a_one_minute_spike_survives_to_the_30_day_chart(store: Store, tmp_path: Path) -> None:
    start = T0 - timedelta(days=30)
    spike = T0 - timedelta(days=12, hours=5, minutes=17)
    samples = [sample(t, cpu=4.0) for t in every(start, 30 * 288, step_s=300)]
    samples.append(sample(spike, cpu=99.0))  # between two regular samples
    samples.sort(key=lambda s: s["ts"])
    write_fast(store, "web1", samples)
    rollup.rebuild(store, "web1")
    now = T0 - timedelta(minutes=1)
    peaks = {}
    for range_name in ("30d", "7d"):
        root = parse_svg(charts.render_host_chart(store, "web1", "cpu", range_name, now).svg)
        assert legend(root) == ["cpu max", "average"]
        peak_line, mean_line = runs(root, percent_scale(root))
        peaks[range_name] = max(v for piece in peak_line for _, v in piece)
        assert max(v for piece in mean_line for _, v in piece) < 20
    assert peaks["30d"] == pytest.approx(99.0, abs=0.5)
    assert peaks["7d"] == pytest.approx(4.0, abs=0.5)  # the spike is older than 7 days


def test_charts_from_rollups_equal_charts_from_raw(store: Store, tmp_path: Path) -> None:
    samples = [sample(t, cpu=float(i % 37), disks=[("/", 50.0 + i % 9)], ok=i % 97 != 3)
               for i, t in enumerate(every(T0 - timedelta(days=3), 3 * 1440))]
    write_fast(store, "web1", samples)
    now = T0 - timedelta(seconds=30)
    without = {r: charts.render_host_chart(store, "web1", "disk", r, now).svg
               for r in ("24h", "7d")}
    rollup.rebuild(store, "web1")
    assert (tmp_path / "rollups" / "web1" / "5m").is_dir()
    for range_name, svg in without.items():
        assert charts.render_host_chart(store, "web1", "disk", range_name, now).svg == svg


def test_host_names_mounts_and_labels_are_escaped(store: Store) -> None:
    checks = {"web": {"state": 0, "perf": {HOSTILE: {"value": 1.0, "uom": ""},
                                           '"&amp;': {"value": 2.0, "uom": ""}}}}
    now = _hour(store, disks=[("/", 10.0), (HOSTILE, 20.0), ('/a"b&c', 30.0)],
                net=[(HOSTILE, 1.0, 1.0)], checks=checks)
    svgs = [charts.render_host_chart(store, "web1", m, "1h", now).svg
            for m in ("disk", "net", "check.web")]
    svgs.append(charts.render_combined_chart(store, ["web1", HOSTILE, '"&'], "disk", "1h",
                                             now).svg)
    for svg in svgs:
        root = parse_svg(svg)  # well-formed XML
        assert not [e for e in root.iter() if str(e.tag).endswith("script")]
        assert b"<script" not in svg and b"javascript:" not in svg
        # No external reference: the SVG namespace is the only URL-looking text.
        assert svg.count(b"http") == 1 and b'xmlns="http://www.w3.org/2000/svg"' in svg
        assert not [e for e in root.iter() for k in e.attrib if k.endswith("href")]
    assert HOSTILE in legend(parse_svg(svgs[0]))
    assert '/a"b&c' in legend(parse_svg(svgs[0]))
    assert set(legend(parse_svg(svgs[2]))) == {HOSTILE, '"&amp;'}
    assert legend(parse_svg(svgs[3]))[1:] == [f"{HOSTILE} (no data)", '"& (no data)']


@pytest.mark.parametrize("text", MORE_HOSTILE)
def test_hostile_mounts_and_check_labels_stay_text(store: Store, text: str) -> None:
    checks = {"web": {"state": 0, "perf": {text: {"value": 1.0, "uom": "%"}}}}
    now = _hour(store, disks=[(text, 20.0)], checks=checks)
    for metric in ("disk", "check.web"):
        svg = charts.render_host_chart(store, "web1", metric, "1h", now).svg
        root = parse_svg(svg)  # well-formed: the text did not end its element
        assert legend(root) == [text]  # shown whole, in the legend's <title> tooltip
        assert [e.tag for e in root.iter() if str(e.tag).endswith(("script", "img"))] == []
        assert b"<img" not in svg and b"]]>" not in svg and b"</script>" not in svg
        assert [k for e in root.iter() for k in e.attrib if k.startswith("on")] == []


def test_a_host_keeps_its_colour_across_charts(store: Store) -> None:
    now = T0 + timedelta(minutes=59, seconds=30)
    for host in ("web1", "db1", "mail"):
        _hour(store, host=host)
    a = series_colors(parse_svg(charts.render_combined_chart(store, ["web1", "db1"], "cpu",
                                                             "1h", now).svg))
    b = series_colors(parse_svg(charts.render_combined_chart(store, ["mail", "db1", "web1"],
                                                             "memory", "6h", now).svg))
    own = series_colors(parse_svg(charts.render_host_chart(store, "db1", "cpu", "1h", now).svg))
    assert a["db1"] == b["db1"] == own["cpu"] == charts.color_for("db1")
    assert a["web1"] == b["web1"] == charts.color_for("web1")
    assert len({charts.color_for(f"web{i}") for i in range(1, 9)}) >= 5  # spread out


def test_assigned_colours_are_distinct_and_stable() -> None:
    hosts = [f"web{i}" for i in range(1, 13)]
    colors = charts.assign_colors(hosts)
    assert len(set(colors.values())) == 12  # the hash alone repeats some of these
    assert len({charts.color_for(h) for h in hosts}) < 12
    assert colors["web1"] == charts.color_for("web1")  # the first host keeps its own
    assert charts.assign_colors(hosts) == colors
    more = charts.assign_colors([f"h{i}" for i in range(24)])
    assert sorted(list(more.values()).count(c) for c in charts.PALETTE) == [2] * 12


def test_charts_use_the_colours_they_are_given(store: Store) -> None:
    now = T0 + timedelta(minutes=59, seconds=30)
    for host in ("web1", "db1"):
        _hour(store, host=host)
    colors = {"web1": charts.PALETTE[3], "db1": charts.PALETTE[7]}
    combined = series_colors(parse_svg(charts.render_combined_chart(
        store, ["web1", "db1"], "cpu", "1h", now, colors=colors).svg))
    assert combined == {"web1": charts.PALETTE[3], "db1": charts.PALETTE[7]}
    own = charts.render_host_chart(store, "db1", "load", "1h", now, color=charts.PALETTE[7])
    assert series_colors(parse_svg(own.svg))["1 min"] == charts.PALETTE[7]
    plain = charts.render_host_chart(store, "db1", "load", "1h", now)
    assert plain.etag != own.etag or charts.color_for("db1") == charts.PALETTE[7]


def test_the_colour_does_not_depend_on_the_process() -> None:
    code = "from collector.views import charts; print(charts.color_for('web1'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "123"}, timeout=60, check=True)
    assert out.stdout.strip() == charts.color_for("web1")


def test_cache_hit_is_the_same_bytes_and_new_data_invalidates(store: Store) -> None:
    cache: ChartCache[charts.Chart] = ChartCache(max_entries=8)
    now = _hour(store)
    first = charts.render_host_chart(store, "web1", "cpu", "24h", now, cache=cache)
    again = charts.render_host_chart(store, "web1", "cpu", "24h", now, cache=cache)
    assert again is first and len(cache) == 1
    # Without the cache the same data give the same bytes and etag (for HTTP 304).
    assert charts.render_host_chart(store, "web1", "cpu", "24h", now) == first
    store.append("web1", sample(T0 + timedelta(minutes=60), cpu=90.0))
    newer = charts.render_host_chart(store, "web1", "cpu", "24h",
                                     now + timedelta(minutes=1), cache=cache)
    assert newer.newest == "2026-11-21T13:00:00Z" and newer.etag != first.etag
    assert newer.svg != first.svg


def test_a_dead_hosts_chart_still_moves_with_time(store: Store) -> None:
    now = _hour(store)
    cache: ChartCache[charts.Chart] = ChartCache()
    first = charts.render_host_chart(store, "web1", "cpu", "1h", now, cache=cache)
    later = charts.render_host_chart(store, "web1", "cpu", "1h", now + timedelta(minutes=20),
                                     cache=cache)
    assert later.newest == first.newest and later.etag != first.etag
    assert len(runs(parse_svg(later.svg))[0][0]) < len(runs(parse_svg(first.svg))[0][0])


def test_modified_is_the_newest_sample_or_the_move_of_the_window(store: Store) -> None:
    now = _hour(store)  # newest sample 12:59:00, now 12:59:30
    chart = charts.render_host_chart(store, "web1", "cpu", "1h", now)
    assert chart.modified == (T0 + timedelta(minutes=59)).timestamp()
    # Twenty minutes without data (a dead host): the drawing changed when the window last
    # moved into the slot holding now, not at the last sample.
    later = now + timedelta(minutes=20)
    moved = charts.render_host_chart(store, "web1", "cpu", "1h", later)
    window = charts.plan_window("1h", later)
    assert moved.modified == window.end - window.width
    assert (T0 + timedelta(minutes=59)).timestamp() < moved.modified <= later.timestamp()
    combined = charts.render_combined_chart(store, ["web1", "ghost"], "cpu", "1h", now)
    assert combined.modified == chart.modified


def test_long_ranges_are_drawn_from_rollups_not_raw_lines(store: Store, tmp_path: Path) -> None:
    start = T0 - timedelta(days=3)
    write_fast(store, "web1", [sample(t, cpu=30.0) for t in every(start, 3 * 1440)])
    rollup.rebuild(store, "web1")
    # Break the raw lines of the two older days: a chart that parsed them would change.
    for day in ("2026-11-18", "2026-11-19"):
        path = tmp_path / "hosts" / "web1" / f"{day}.jsonl"
        path.write_bytes(path.read_bytes().replace(b'"percent":30.0', b'"percent":99.0'))
    now = T0 - timedelta(seconds=30)
    for range_name in ("7d", "30d"):
        root = parse_svg(charts.render_host_chart(store, "web1", "cpu", range_name, now).svg)
        peak = runs(root, percent_scale(root))[0]
        values = [v for piece in peak for _, v in piece]
        assert len(values) > 20 and max(values) == pytest.approx(30.0, abs=0.5), range_name
    # The same days on a raw-sample chart do show the edited lines: the edit is real.
    raw = rollup.read_raw(store, "web1", start.timestamp(), start.timestamp() + 600)
    assert raw[0]["cpu"]["percent"] == 99.0


def test_combined_etag_changes_when_any_host_has_new_data(store: Store) -> None:
    now = T0 + timedelta(minutes=59, seconds=30)
    _hour(store, host="web1")
    _hour(store, host="db1")
    before = charts.render_combined_chart(store, ["web1", "db1"], "cpu", "24h", now)
    store.append("db1", sample(T0 + timedelta(minutes=59, seconds=20), host="db1"))
    after = charts.render_combined_chart(store, ["web1", "db1"], "cpu", "24h", now)
    assert before.etag != after.etag and after.newest == "2026-11-21T12:59:20Z"


def test_cache_is_bounded_and_thread_safe() -> None:
    cache: ChartCache[int] = ChartCache(max_entries=50)
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(2000):
                cache.put((offset, i % 80), i)
                cache.get((offset, (i * 7) % 80))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(cache) == 50
    cache.put("fresh", 1)
    assert cache.get("fresh") == 1


def test_window_uses_the_coarsest_source_that_fills_the_chart() -> None:
    now = datetime(2026, 11, 21, 12, 34, 56, tzinfo=timezone.utc)
    plans = {r: charts.plan_window(r, now) for r in charts.RANGES}
    assert {r: p.res for r, p in plans.items()} == {
        "1h": None, "6h": None, "24h": "5m", "7d": "5m", "30d": "1h"}
    for range_name, plan in plans.items():
        points = (plan.end - plan.start) / plan.width
        assert 60 <= points <= charts.MAX_POINTS, range_name
        assert plan.start <= now.timestamp() < plan.end


def test_combined_chart_of_no_hosts_says_no_data(store: Store) -> None:
    root = parse_svg(charts.render_combined_chart(store, [], "cpu", "7d", T0).svg)
    assert "no data in the last 7d" in [e.text for e in root.iter(f"{SVG_NS}text")]


def _contrast_on_white(color: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(int(color[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def test_every_line_colour_stands_out_on_white() -> None:
    assert len(set(charts.PALETTE)) == len(charts.PALETTE) == 12
    assert all(_contrast_on_white(c) >= 3.0 for c in charts.PALETTE), [
        (c, round(_contrast_on_white(c), 2)) for c in charts.PALETTE]


def test_max_and_average_have_legend_colours_of_their_own(store: Store) -> None:
    """The dash tells the lines apart on the plot, not in the legend's squares."""
    write_fast(store, "web1", [sample(t, cpu=10.0 + (i % 7)) for i, t in
                               enumerate(every(T0 - timedelta(hours=6), 6 * 60))])
    rollup.rebuild(store, "web1")
    for host_color in charts.PALETTE:
        root = parse_svg(charts.render_host_chart(store, "web1", "cpu", "24h", T0,
                                                  color=host_color).svg)
        colours = series_colors(root)
        assert list(colours) == ["cpu max", "average"]
        assert colours["cpu max"] == host_color.upper()
        assert colours["average"] != colours["cpu max"], host_color
        assert _contrast_on_white(colours["average"]) >= 3.0


def readout_of(svg: bytes) -> dict:
    import json
    import re

    return json.loads(re.search(rb'<metadata id="osmon-readout">([^<]*)</metadata>', svg)
                      .group(1))


def test_a_fitted_chart_starts_at_the_first_sample(store: Store) -> None:
    """A host collected for 25 minutes: its opening chart spans those minutes, not an hour."""
    first = T0 + timedelta(seconds=17)
    write_fast(store, "web1", [sample(t) for t in every(first, 25)])
    now = first + timedelta(minutes=24, seconds=30)
    fitted = charts.render_host_chart(store, "web1", "cpu", "1h", now, fit=True)
    plain = charts.render_host_chart(store, "web1", "cpu", "1h", now)
    meta, whole = readout_of(fitted.svg), readout_of(plain.svg)
    assert meta["start"] == T0.timestamp() and meta["end"] == whole["end"]
    assert whole["end"] - whole["start"] == 3600
    assert b"since 12:00, UTC" in fitted.svg and b"last 1h, UTC" in plain.svg
    assert fitted.etag != plain.etag
    xs = [x for piece in runs(parse_svg(fitted.svg))[0] for x, _v in piece]
    assert max(xs) - min(xs) > 0.8 * (meta["x1"] - meta["x0"])  # the line fills the plot
    # Just started: still ten points wide; older data than the range: the whole range.
    write_fast(store, "new", [sample(now, host="new")])
    assert (lambda m: m["end"] - m["start"])(readout_of(charts.render_host_chart(
        store, "new", "cpu", "1h", now, fit=True).svg)) == 600
    window = charts.plan_window("1h", now)
    assert charts.fit_window(window, "2026-01-01T00:00:00Z") == window
