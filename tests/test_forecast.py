"""Disk-full forecasts on readings built for the purpose: each shape an admin's disk takes."""

from __future__ import annotations

import random

import pytest

from collector.metrics.forecast import Point, forecast

HOUR = 3600.0
TB = 1e12


def series(hours: float, start: float, per_hour: float, *, every_s: float = 300.0,
           total: float = TB, t0: float = 1_000_000.0) -> list[Point]:
    count = int(hours * HOUR / every_s) + 1
    return [Point(t0 + i * every_s, start + per_hour * i * every_s / HOUR, total)
            for i in range(count)]


def test_steady_growth_is_forecast_to_the_hour() -> None:
    points = series(6, 70.0, 2.0)  # 70 % -> 82 % in 6 h: 18 points left at 2 an hour
    result = forecast(points, points[-1].t)
    assert result.full_in_s == pytest.approx(9 * HOUR, rel=0.01)
    assert result.rate_per_h == pytest.approx(2.0, rel=0.01)


def test_flat_and_shrinking_disks_are_not_filling() -> None:
    flat = series(6, 90.0, 0.0)
    shrinking = series(6, 90.0, -0.5)
    assert forecast(flat, flat[-1].t).full_in_s is None
    assert forecast(shrinking, shrinking[-1].t).full_in_s is None
    assert forecast(shrinking, shrinking[-1].t).reason == "not filling"


def test_less_than_half_an_hour_of_data_gives_no_forecast() -> None:
    points = series(0.4, 50.0, 10.0)
    result = forecast(points, points[-1].t)
    assert result.full_in_s is None and result.reason == "not enough data yet"


def test_one_outlier_does_not_tilt_the_fit() -> None:
    points = series(6, 70.0, 2.0)
    points[40] = points[40]._replace(percent=99.0)  # a 30 % temporary file, gone next pass
    assert forecast(points, points[-1].t).full_in_s == pytest.approx(9 * HOUR, rel=0.02)


def test_a_sudden_cleanup_restarts_the_fit() -> None:
    before = series(3, 60.0, 5.0)                       # filling fast ...
    after = series(3, 40.0, 0.0, t0=before[-1].t + 300)  # ... cleaned up, flat since
    assert forecast(before + after, after[-1].t).full_in_s is None
    refill = series(3, 40.0, 3.0, t0=before[-1].t + 300)  # cleaned, filling again from 40 %
    result = forecast(before + refill, refill[-1].t)
    assert result.rate_per_h == pytest.approx(3.0, rel=0.01)
    assert result.full_in_s == pytest.approx((100 - 49.0) / 3.0 * HOUR, rel=0.02)


def test_a_resized_file_system_restarts_the_fit() -> None:
    small = series(4, 80.0, 3.0)                                   # 80 -> 92 % on 1 TB
    grown = series(1, 46.0, 0.5, total=2 * TB, t0=small[-1].t + 300)  # resized to 2 TB
    result = forecast(small + grown, grown[-1].t)
    assert result.rate_per_h == pytest.approx(0.5, rel=0.01)
    assert result.points == len(grown)


def test_noise_without_a_trend_is_not_trusted() -> None:
    rng = random.Random(7)
    points = [p._replace(percent=60.0 + rng.uniform(-2, 2)) for p in series(6, 60.0, 0.0)]
    points[-1] = points[-1]._replace(percent=61.0)
    result = forecast(points, points[-1].t)
    assert result.full_in_s is None
    assert result.reason in ("growth within the noise", "not filling")


def test_noisy_but_clear_growth_is_forecast() -> None:
    rng = random.Random(11)
    points = [p._replace(percent=p.percent + rng.uniform(-0.5, 0.5))
              for p in series(6, 50.0, 4.0)]
    assert forecast(points, points[-1].t).full_in_s == pytest.approx(6.5 * HOUR, rel=0.1)


def test_a_disk_a_year_away_is_not_filling() -> None:
    points = series(6, 10.0, 0.005)  # 0.005 points an hour: 2 years to go
    assert forecast(points, points[-1].t).full_in_s is None
