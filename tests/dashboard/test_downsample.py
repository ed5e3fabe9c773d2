"""Downsampling keeps what a chart must show: the ends, the spikes, the gaps."""

from __future__ import annotations

import numpy as np
import pytest

from whirr.analytics.downsample import downsample, lttb, minmax


def series(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.arange(n, dtype=np.float64)
    return x, np.sin(x / 500) + rng.normal(0, 0.05, n)


@pytest.mark.parametrize("method", ["minmax", "lttb"])
def test_short_series_come_back_unchanged(method: str) -> None:
    x, y = series(50)
    dx, dy = downsample(x, y, 200, method)  # type: ignore[arg-type]
    assert np.array_equal(dx, x) and np.array_equal(dy, y)


@pytest.mark.parametrize("method", ["minmax", "lttb"])
def test_long_series_shrink_and_keep_both_ends_in_order(method: str) -> None:
    x, y = series(1_000_000)
    dx, dy = downsample(x, y, 1000, method)  # type: ignore[arg-type]
    assert 900 <= len(dx) <= 1002
    assert dx[0] == 0 and dx[-1] == 999_999
    assert dy[0] == y[0] and dy[-1] == y[-1]
    assert np.all(np.diff(dx) > 0)
    # Every point drawn is a real point of the series.
    assert np.array_equal(dy, y[dx.astype(np.int64)])


@pytest.mark.parametrize("method", ["minmax", "lttb"])
def test_a_one_point_spike_survives(method: str) -> None:
    x, y = series(1_000_000, seed=1)
    y[654_321] = 40.0  # a loss blow-up for one step
    y[123_456] = -30.0  # and a dip
    dx, dy = downsample(x, y, 800, method)  # type: ignore[arg-type]
    assert 40.0 in dy and 654_321 in dx
    assert -30.0 in dy and 123_456 in dx


def test_minmax_keeps_every_bucket_extreme() -> None:
    x, y = series(10_000, seed=2)
    _, dy = minmax(x, y, 100)
    for start in range(0, 10_000, 100):
        chunk = y[start : start + 100]
        assert chunk.max() in dy and chunk.min() in dy


@pytest.mark.parametrize("n", [10_000, 10_007, 9_901])
@pytest.mark.parametrize("gap", [False, True])
def test_minmax_picks_each_buckets_first_lowest_and_highest_point(n: int, gap: bool) -> None:
    # Few distinct values, so buckets hold ties (the first is kept), and lengths that do
    # not divide into buckets, so the last bucket is padded: with and without a NaN,
    # which take different paths.
    x = np.arange(n, dtype=np.float64)
    y = np.random.default_rng(n).integers(0, 4, n).astype(np.float64)
    if gap:
        y[17] = np.nan
    size = -(-n // 100)
    want = {0, n - 1}
    for start in range(0, n, size):
        part = y[start : start + size]
        lowest = np.where(np.isnan(part), np.inf, part).argmin()
        highest = np.where(np.isnan(part), -np.inf, part).argmax()
        want |= {start + int(lowest), start + int(highest)}
    dx, _ = minmax(x, y, 100)
    assert dx.tolist() == sorted(want)


def test_minmax_does_not_need_sorted_x() -> None:
    # Steps that restart (a resumed run) are still drawn point for point in log order.
    x = np.concatenate([np.arange(5000), np.arange(2500, 7500)]).astype(np.float64)
    y = np.linspace(0, 1, 10_000)
    dx, _ = minmax(x, y, 50)
    assert dx[0] == 0 and dx[-1] == 7499 and len(dx) <= 102


def test_nan_points_are_never_extremes_but_an_all_nan_bucket_keeps_its_gap() -> None:
    x = np.arange(1000, dtype=np.float64)
    y = np.ones(1000)
    y[::2] = np.nan
    y[500:600] = np.nan
    y[301] = 5.0
    dx, dy = minmax(x, y, 10)
    assert 5.0 in dy
    assert 500 in dx and np.isnan(dy[dx == 500]).all()  # the gap at 500..599 shows
    # Elsewhere only the first point (always kept, and NaN here) may be NaN.
    assert not np.isnan(dy[((dx > 0) & (dx < 500)) | (dx >= 600)]).any()


def test_lttb_skips_nan_points() -> None:
    x = np.arange(10_000, dtype=np.float64)
    y = np.cos(x / 100)
    y[::3] = np.nan
    dx, dy = lttb(x, y, 300)
    assert len(dx) == 300 and not np.isnan(dy).any()


def test_bad_arguments_are_refused() -> None:
    x, y = series(100)
    with pytest.raises(ValueError):
        downsample(x, y, 100, "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        minmax(x, y[:50], 10)
    with pytest.raises(ValueError):
        lttb(x, y, 2)
