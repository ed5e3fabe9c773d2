"""Downsampling long metric series for drawing: a million points become a few thousand
that look the same on screen.

Two methods, both pure numpy and both keeping the first and last point:

- ``minmax``: split the series into ``buckets`` runs of consecutive points (one per pixel
  column of the chart) and keep each run's lowest and highest point, in their original
  order. A one-step spike always survives, which is what a loss curve needs: the point of
  looking is to see the blow-up.
- ``lttb``: Largest-Triangle-Three-Buckets (Steinarsson, 2013) keeps one point per bucket,
  the one forming the largest triangle with its neighbours' choices. Smoother output with
  half the points; a spike survives when it dominates its bucket.

NaN values (a metric logged as null) are never chosen as a bucket's extreme unless the
whole bucket is NaN, in which case one NaN is kept so the chart shows the gap.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Method = Literal["minmax", "lttb"]
METHODS: tuple[Method, ...] = ("minmax", "lttb")


def downsample(x: Array, y: Array, points: int, method: Method = "minmax") -> tuple[Array, Array]:
    """At most about ``points`` points of the series ``(x, y)`` chosen by ``method``;
    the series itself when it is already that short."""
    if method == "minmax":
        return minmax(x, y, max(1, points // 2))
    if method == "lttb":
        return lttb(x, y, points)
    raise ValueError(f"unknown downsampling method {method!r}; use one of {METHODS}")


def _check(x: Array, y: Array) -> tuple[Array, Array]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d and of equal length, got {x.shape} and {y.shape}")
    return x, y


def minmax(x: Array, y: Array, buckets: int) -> tuple[Array, Array]:
    """Each bucket's minimum and maximum (in index order), plus the first and last point:
    at most ``2 * buckets + 2`` points."""
    x, y = _check(x, y)
    n = len(x)
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    if n <= 2 * buckets + 2:
        return x, y
    # Equal counts per bucket: for evenly logged steps that is one bucket per pixel
    # column, and it needs no assumption that x is sorted (steps may restart).
    size = -(-n // buckets)
    if np.isnan(y).any():
        flat = np.full(size * buckets, np.nan)
        flat[:n] = y
        grid = flat.reshape(buckets, size)
        nan = np.isnan(grid)
        lo = np.argmin(np.where(nan, np.inf, grid), axis=1)
        hi = np.argmax(np.where(nan, -np.inf, grid), axis=1)
    else:
        # Padded with the last point again: arg(min|max) takes the first of equal values,
        # so a pad is never chosen over that point. No NaN: no masked copies to make.
        grid = np.pad(y, (0, size * buckets - n), mode="edge").reshape(buckets, size)
        lo, hi = grid.argmin(axis=1), grid.argmax(axis=1)
    base = np.arange(buckets) * size
    picked = np.concatenate(([0], base + lo, base + hi, [n - 1]))
    keep = np.unique(picked[picked < n])  # sorted: points stay in their original order
    return x[keep], y[keep]


def lttb(x: Array, y: Array, points: int) -> tuple[Array, Array]:
    """Largest-Triangle-Three-Buckets: ``points`` points (first and last included)."""
    x, y = _check(x, y)
    n = len(x)
    if points < 3:
        raise ValueError("lttb needs at least 3 points")
    if n <= points:
        return x, y
    # NaNs cannot form triangles: choose among finite points, then the series is what was
    # chosen (gaps from nulls are lost, which minmax keeps; charts use minmax by default).
    finite = np.isfinite(y) & np.isfinite(x)
    if not finite.all():
        fx, fy = x[finite], y[finite]
        if len(fx) <= points:
            return fx, fy
        return lttb(fx, fy, points)
    # Bucket edges over the interior points 1 .. n-2, split as evenly as possible.
    edges = np.linspace(1, n - 1, points - 1).astype(np.int64)
    keep = np.empty(points, dtype=np.int64)
    keep[0] = 0
    keep[-1] = n - 1
    chosen = 0
    for b in range(points - 2):
        start, stop = edges[b], edges[b + 1]
        # The next bucket's average is the third corner (the last bucket's is the end).
        nstart, nstop = edges[b + 1], edges[b + 2] if b + 2 < len(edges) else n
        if nstop <= nstart:
            nstart, nstop = n - 1, n
        cx, cy = x[nstart:nstop].mean(), y[nstart:nstop].mean()
        ax, ay = x[chosen], y[chosen]
        bx, by = x[start:stop], y[start:stop]
        # Twice the triangle's area; the constant factor does not change the argmax.
        area = np.abs((ax - cx) * (by - ay) - (ax - bx) * (cy - ay))
        chosen = int(start + np.argmax(area))
        keep[b + 1] = chosen
    return x[keep], y[keep]
