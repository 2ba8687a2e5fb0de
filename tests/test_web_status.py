"""Host status: the one word the overview, the API and ``osmon status`` show for each host."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from web_fixtures import NOW, failed_sample, make_site, sample

from collector.config import Level, Thresholds
from collector.metrics.families.disks import fullest
from collector.metrics.families.load import per_core
from collector.metrics.registry import builtin_levels
from collector.views.health import (
    HostStatus,
    collector_state,
    fleet_status,
    format_age,
    host_status,
)


def _defaults(**overrides: Level) -> Thresholds:
    levels, items = builtin_levels()
    levels.update(overrides)
    return Thresholds(levels, items)


def status_of(s: dict | None, alerts: list[dict] | None = None,
              thresholds: Thresholds | None = None, interval_s: float = 60) -> HostStatus:
    return host_status("web1", s, alerts or [], thresholds or _defaults(), NOW, interval_s)


def test_a_fresh_quiet_sample_is_ok() -> None:
    result = status_of(sample("web1", NOW - timedelta(seconds=42)))
    assert result.status == "ok"
    assert result.reasons == ()
    assert result.age_s == 42
    data = result.as_dict()
    assert (data["cpu"], data["memory"], data["disk"], data["disk_mount"]) == (12.5, 40.0, 50.0,
                                                                               "/")


def test_no_sample_at_all_is_stale_not_ok() -> None:
    result = status_of(None)
    assert result.status == "stale"
    assert result.reasons == ("no data yet",)
    assert result.ts is None and result.age_s is None


def test_a_sample_older_than_three_intervals_is_stale_even_if_it_was_critical() -> None:
    old = sample("web1", NOW - timedelta(seconds=181), cpu=99.0)
    assert status_of(old).status == "stale"
    assert "last sample 3 min ago" in status_of(old).reasons
    # Three intervals exactly is still fresh: one or two missed passes are not a stale host.
    assert status_of(sample("web1", NOW - timedelta(seconds=180))).status == "ok"
    # The interval comes from the config: with 10 s passes, 31 s is already stale.
    assert status_of(sample("web1", NOW - timedelta(seconds=31)), interval_s=10).status == "stale"


def test_a_failed_collection_is_down_with_its_error() -> None:
    result = status_of(failed_sample("web1", NOW, "auth", "permission denied (publickey)"))
    assert result.status == "down"
    assert result.error == "auth: permission denied (publickey)"
    assert result.reasons == ("auth: permission denied (publickey)",)


def test_values_over_thresholds_warn_before_the_alert_fires() -> None:
    warning = status_of(sample("web1", NOW, cpu=85.0))
    assert warning.status == "warning"
    assert warning.levels["cpu"] == "warning"
    assert warning.reasons == ("warning: cpu 85 %",)
    critical = status_of(sample("web1", NOW, cpu=85.0, disk=97.0))
    assert critical.status == "critical"
    assert critical.reasons[0] == "critical: disk / 97 %"  # worst first


def test_a_mount_with_its_own_threshold_uses_it() -> None:
    defaults = _defaults()
    thresholds = Thresholds(defaults.levels, {"disk": {"/backup": Level(98, 99, 1)}})
    s = sample("web1", NOW, disk=96.0, mount="/backup")
    assert status_of(s).status == "critical"
    assert status_of(s, thresholds=thresholds).status == "ok"


def test_load_thresholds_are_per_core() -> None:
    s = sample("web1", NOW, load1=6.0)  # 4 cores: 1.5 per core, below the 2.0 warning
    assert per_core(s) == [(None, 1.5, 1.5, "")]
    assert status_of(s).status == "ok"
    assert status_of(sample("web1", NOW, load1=17.0)).status == "critical"


def test_active_alerts_and_failing_checks_count() -> None:
    alert = {"host": "web1", "metric": "memory", "level": "critical", "message": "memory 97 %"}
    assert status_of(sample("web1", NOW), [alert]).status == "critical"
    assert status_of(sample("web1", NOW), [alert]).alerts == 1
    checks = {"http": {"state": 1, "output": "slow"}, "ntp": {"state": 0, "output": "ok"}}
    result = status_of(sample("web1", NOW, checks=checks))
    assert result.status == "warning"
    assert result.reasons == ("warning: check http WARNING",)


def test_odd_samples_never_crash() -> None:
    odd = {"ts": "2026-11-21T22:41:00Z", "ok": True, "cpu": "busy", "disks": [None, {"x": 1}],
           "memory": [], "checks": {"x": "nonsense"}}
    result = status_of(odd)
    assert result.status == "ok"
    assert result.values["cpu"] is None and result.values["disk"] is None
    assert fullest({"disks": "none"}) == (None, None)
    assert status_of({"ts": "yesterday"}).status == "stale"


def test_fleet_is_worst_first_and_skips_disabled_hosts(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "a"}, {"name": "b"}, {"name": "c"},
                                {"name": "off", "enabled": False}])
    latest = {"a": sample("a", NOW), "b": failed_sample("b", NOW), "c": sample("c", NOW, cpu=90)}
    names = [(s.name, s.status) for s in fleet_status(site.config, latest, [], NOW)]
    assert names == [("b", "down"), ("c", "warning"), ("a", "ok")]


def test_collector_state_says_when_passes_stopped() -> None:
    assert collector_state({"ts": "2026-11-21T22:40:00Z"}, NOW, 60).stale is False
    stopped = collector_state({"ts": "2026-11-21T22:30:00Z"}, NOW, 60)
    assert stopped.stale is True and stopped.age_s == 660
    assert collector_state(None, NOW, 60).stale is True


def test_format_age_reads_naturally() -> None:
    assert [format_age(s) for s in (None, 0, 42, 119, 120, 7199, 7200, 172799, 172800)] == [
        "never", "0 s ago", "42 s ago", "119 s ago", "2 min ago", "119 min ago", "2 h ago",
        "47 h ago", "2 d ago"]
