"""An ablation's conditions, paired seeds, per-cell configs and commands. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from whirr.services.errors import InvalidRequest

BASELINE = "baseline"
#: The most cells (jobs) one ``ablate run`` plans: conditions x replicates. Checked before
#: anything is built, so a mistyped ``-r 100000000`` is an error, not a hang.
MAX_CELLS = 100_000
SEED_TOKEN = "{{seed}}"
CFG_TOKEN = "{{cfg_path}}"


class Cell(msgspec.Struct, frozen=True):
    """One (condition, replicate) of the study, ready to queue."""

    condition: str
    replicate: int
    seed: int
    cfg_path: str
    argv: list[str]
    config: dict[str, Any]

    @property
    def key(self) -> tuple[str, int]:
        """(condition, replicate)."""
        return self.condition, self.replicate


def seed_for(seed_base: int, replicate: int) -> int:
    """The seed every condition uses for ``replicate`` (what makes the pairs)."""
    return seed_base + replicate


def render(template: Sequence[str], seed: int, cfg_path: str) -> list[str]:
    """``template`` with ``{{seed}}`` and ``{{cfg_path}}`` filled in, in every argument."""
    return [a.replace(SEED_TOKEN, str(seed)).replace(CFG_TOKEN, cfg_path) for a in template]


def cells(
    *,
    ablation: str,
    conditions: Mapping[str, Mapping[str, Any]],
    seed_base: int,
    replicates: int,
    template: Sequence[str],
    cfg_path: Any,
    skip: frozenset[tuple[str, int]] = frozenset(),
) -> list[Cell]:
    """Every cell not in ``skip``, replicate-major (so early replicates of every condition
    run first, and a partial study already holds complete pairs).

    ``conditions``: name -> settings (baseline first); ``cfg_path(condition, replicate)``
    gives where the cell's config file goes. More than ``MAX_CELLS`` is ``InvalidRequest``."""
    total = replicates * len(conditions)
    if total > MAX_CELLS:
        raise InvalidRequest(
            f"{len(conditions)} condition(s) x {replicates} replicate(s) = {total} jobs; "
            f"one study runs at most {MAX_CELLS}"
        )
    planned = []
    for replicate in range(replicates):
        seed = seed_for(seed_base, replicate)
        for condition, values in conditions.items():
            if (condition, replicate) in skip:
                continue
            path = str(cfg_path(condition, replicate))
            meta = {
                "ablation": ablation,
                "condition": condition,
                "replicate": replicate,
                "seed": seed,
            }
            planned.append(
                Cell(
                    condition=condition,
                    replicate=replicate,
                    seed=seed,
                    cfg_path=path,
                    argv=render(template, seed, path),
                    config={**values, "__ablate__": meta},
                )
            )
    return planned
