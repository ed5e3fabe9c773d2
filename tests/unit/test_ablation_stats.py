"""Paired effects: the mean difference, a reproducible bootstrap interval, sign agreement."""

from __future__ import annotations

import random

import pytest

from whirr.ablations.stats import Pair, bootstrap_interval, paired_effect, rank


def pairs(diffs: list[float], base: float = 10.0) -> list[Pair]:
    return [Pair(i, base + i, base + i + d) for i, d in enumerate(diffs)]


def test_effect_is_the_mean_paired_difference() -> None:
    effect = paired_effect("d", pairs([1.0, 2.0, 3.0, -0.5]))
    assert effect.effect == pytest.approx(1.375)
    assert effect.effect == pytest.approx(effect.mean_delta - effect.mean_baseline)
    assert (effect.n, effect.agree) == (4, 3)


def test_interval_is_reproducible_and_brackets_the_mean() -> None:
    diffs = [0.3, 0.5, 0.1, 0.6, 0.4, 0.2]
    first, again = bootstrap_interval(diffs), bootstrap_interval(diffs)
    assert first == again
    assert first is not None
    low, high = first
    assert min(diffs) <= low < sum(diffs) / len(diffs) < high <= max(diffs)


def test_one_pair_has_no_interval() -> None:
    effect = paired_effect("d", pairs([2.0]))
    assert (effect.ci_low, effect.ci_high, effect.excludes_zero) == (None, None, False)
    assert effect.agree == 1


def test_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    rng = random.Random(42)
    trials, covered = 200, 0
    for trial in range(trials):
        diffs = [rng.gauss(1.5, 1.0) for _ in range(20)]
        interval = bootstrap_interval(diffs, resamples=1000, seed=trial)
        assert interval is not None
        covered += interval[0] <= 1.5 <= interval[1]
    assert 0.90 <= covered / trials <= 0.99


def test_excludes_zero_only_when_the_whole_interval_is_on_one_side() -> None:
    assert paired_effect("up", pairs([1.0, 1.2, 0.9, 1.1])).excludes_zero
    assert not paired_effect("flat", pairs([1.0, -1.0, 0.5, -0.6])).excludes_zero


def test_rank_puts_the_strongest_effect_first_whatever_its_sign() -> None:
    effects = [
        paired_effect("small", pairs([0.1, 0.2])),
        paired_effect("negative", pairs([-3.0, -2.0])),
        paired_effect("big", pairs([2.0, 2.2])),
    ]
    assert [e.delta for e in rank(effects)] == ["negative", "big", "small"]
