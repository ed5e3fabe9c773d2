"""Paired effects with bootstrap confidence intervals. Pure (seeded randomness only).

Replicate ``r`` of every condition runs with the same seed, so a delta's effect is
estimated from paired differences ``delta_r - baseline_r``: the seed's own noise cancels
out, which needs far fewer replicates than comparing two independent means.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import msgspec

#: Resamples of the bootstrap; 10,000 keeps the interval's ends stable to about 1%.
RESAMPLES = 10_000
#: The bootstrap's seed: the same results always give the same interval.
BOOTSTRAP_SEED = 0


class Pair(msgspec.Struct, frozen=True):
    """One replicate's metric under the baseline and under the delta."""

    replicate: int
    baseline: float
    delta: float

    @property
    def difference(self) -> float:
        """delta - baseline."""
        return self.delta - self.baseline


class Effect(msgspec.Struct, frozen=True, kw_only=True):
    """A delta's effect: the mean paired difference, its interval, and sign agreement."""

    delta: str
    n: int
    effect: float
    ci_low: float | None
    ci_high: float | None
    #: Pairs whose difference has the sign of ``effect`` (zero counts when effect is 0).
    agree: int
    mean_baseline: float
    mean_delta: float
    pairs: list[Pair] = []

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely on one side of zero."""
        if self.ci_low is None or self.ci_high is None:
            return False
        return self.ci_low > 0 or self.ci_high < 0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def bootstrap_interval(
    values: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``values`` (None for fewer than 2)."""
    n = len(values)
    if n < 2:
        return None
    rng = random.Random(seed)
    means = sorted(_mean(rng.choices(values, k=n)) for _ in range(resamples))
    tail = (1 - level) / 2
    low = means[int(tail * resamples)]
    high = means[min(resamples - 1, int((1 - tail) * resamples))]
    return low, high


def paired_effect(
    delta: str,
    pairs: Sequence[Pair],
    *,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Effect:
    """The effect of ``delta`` from its pairs (at least one)."""
    diffs = [p.difference for p in pairs]
    effect = _mean(diffs)
    interval = bootstrap_interval(diffs, level=level, resamples=resamples, seed=seed)
    return Effect(
        delta=delta,
        n=len(pairs),
        effect=effect,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        agree=sum(1 for d in diffs if _sign(d) == _sign(effect)),
        mean_baseline=_mean([p.baseline for p in pairs]),
        mean_delta=_mean([p.delta for p in pairs]),
        pairs=list(pairs),
    )


def rank(effects: Sequence[Effect]) -> list[Effect]:
    """Strongest effect first (by absolute size; ties by name)."""
    return sorted(effects, key=lambda e: (-abs(e.effect), e.delta))
