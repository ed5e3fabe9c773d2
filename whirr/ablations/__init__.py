"""Ablation studies: a baseline and deltas run over replicates with paired seeds, each
delta ranked by its mean paired difference on a metric, with a bootstrap interval."""

from whirr.ablations.state import Ablation, Delta
from whirr.ablations.stats import Effect, Pair, paired_effect

__all__ = ["Ablation", "Delta", "Effect", "Pair", "paired_effect"]
