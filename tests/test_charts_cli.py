"""``osmon charts --out DIR``: static SVG files and an index page, run through the real CLI."""

from __future__ import annotations

import html.parser
from datetime import timedelta
from pathlib import Path

import pytest
from chart_fixtures import every, parse_svg, runs, sample, write_fast

from collector import cli
from collector.commands import charts as cmd_charts
from collector.store.samples import Store
from collector.times import utc_now
from collector.views import charts

CONFIG = """\
[settings]
data_dir = "data"

[[hosts]]
name = "central"
local = true

[[hosts]]
name = "web1"
address = "192.0.2.10"

[[hosts]]
name = "old"
address = "192.0.2.11"
enabled = false

[[checks]]
name = "http"
command = ["/usr/lib/nagios/plugins/check_http", "-H", "localhost"]
hosts = ["web1"]
"""


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(CONFIG, encoding="utf-8")
    store = Store(tmp_path / "data")
    start = utc_now().replace(microsecond=0) - timedelta(minutes=30)
    checks = {"http": {"state": 0, "perf": {"time": {"value": 0.2, "uom": "s"}}}}
    write_fast(store, "web1", [sample(t, checks=checks) for t in every(start, 30)])
    return path


def test_writes_every_host_metric_and_combined_chart(config: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site"
    assert cli.main(["--config", str(config), "charts", "--out", str(out), "--range", "1h",
                     "--range", "7d"]) == 0
    assert capsys.readouterr().out == ""  # quiet when not on a terminal (cron)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    expected = ["index.html"]
    for range_name in ("1h", "7d"):
        expected += [f"all/{m}-{range_name}.svg" for m in charts.METRICS]
        expected += [f"hosts/central/{m}-{range_name}.svg" for m in charts.METRICS]
        expected += [f"hosts/web1/{m}-{range_name}.svg"
                     for m in (*charts.METRICS, "check.http")]
    assert written == sorted(expected)  # the disabled host is left out
    web1 = parse_svg((out / "hosts" / "web1" / "cpu-1h.svg").read_bytes())
    assert runs(web1)[0], "the chart shows the stored samples"
    check = parse_svg((out / "hosts" / "web1" / "check.http-1h.svg").read_bytes())
    assert runs(check)[0]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'src="hosts/web1/cpu-1h.svg"' in index and 'src="all/net-7d.svg"' in index


def test_default_range_is_24h(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert cli.main(["--config", str(config), "charts", "--out", str(out)]) == 0
    assert (out / "all" / "cpu-24h.svg").is_file()
    assert not list(out.rglob("*-1h.svg"))


def test_bad_range_is_a_usage_error(config: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--config", str(config), "charts", "--out", str(tmp_path), "--range", "2h"])
    assert exit_info.value.code == 2


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_index_escapes_host_names() -> None:
    hostile = '<img src=x onerror=alert(1)>"&'
    page = cmd_charts.index_html([hostile], {hostile: ["cpu"]}, ["1h"])
    parser = _Collect()
    parser.feed(page)
    assert "script" not in parser.tags
    assert parser.tags.count("img") == len(charts.METRICS) + 1  # only the chart images
    assert hostile in "".join(parser.text)
    assert "onerror" not in parser.attrs
