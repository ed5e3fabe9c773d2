"""An ablation study folded from its stream. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from whirr.ablations.plan import BASELINE
from whirr.events import (
    AblationBaselineSet,
    AblationCreated,
    AblationDeltaAdded,
    AblationJobAdded,
    AblationLaunched,
    Recorded,
)


class Delta(msgspec.Struct, frozen=True):
    """A named change against the baseline; ``files``: key -> the @file it came from."""

    name: str
    values: dict[str, Any]
    files: dict[str, str] = {}


class Member(msgspec.Struct, frozen=True):
    """A job queued for one cell of the study."""

    job_id: int
    condition: str
    replicate: int
    seed: int
    cfg_path: str = ""


class Ablation(msgspec.Struct, frozen=True, kw_only=True):
    """What the log knows about one ablation study."""

    name: str
    metric: str
    seed_base: int
    replicates: int
    created_at: datetime
    baseline: dict[str, Any] = {}
    baseline_files: dict[str, str] = {}
    deltas: list[Delta] = []
    launches: list[AblationLaunched] = []
    members: list[Member] = []

    @property
    def conditions(self) -> dict[str, dict[str, Any]]:
        """Condition name -> its full settings, baseline first, deltas in order added."""
        found = {BASELINE: dict(self.baseline)}
        for delta in self.deltas:
            found[delta.name] = {**self.baseline, **delta.values}
        return found

    def latest(self) -> dict[tuple[str, int], Member]:
        """The newest job of every (condition, replicate) cell (a re-run replaces one)."""
        return {(m.condition, m.replicate): m for m in self.members}


def fold(records: Sequence[Recorded]) -> Ablation | None:
    """The study whose stream is ``records`` (None before it was created)."""
    study: Ablation | None = None
    replace = msgspec.structs.replace
    for rec in records:
        event = rec.event
        if isinstance(event, AblationCreated):
            study = Ablation(
                name=event.ablation,
                metric=event.metric,
                seed_base=event.seed_base,
                replicates=event.replicates,
                created_at=rec.recorded_at,
            )
        elif study is None:
            continue
        elif isinstance(event, AblationBaselineSet):
            study = replace(
                study,
                baseline={**study.baseline, **event.values},
                baseline_files=_files(study.baseline_files, event.values, event.files),
            )
        elif isinstance(event, AblationDeltaAdded):
            delta = Delta(event.delta, event.values, event.files)
            if any(d.name == event.delta for d in study.deltas):  # replaced in place
                deltas = [delta if d.name == event.delta else d for d in study.deltas]
            else:
                deltas = [*study.deltas, delta]
            study = replace(study, deltas=deltas)
        elif isinstance(event, AblationLaunched):
            study = replace(study, launches=[*study.launches, event])
        elif isinstance(event, AblationJobAdded):
            member = Member(
                event.job_id, event.condition, event.replicate, event.seed, event.cfg_path
            )
            study = replace(study, members=[*study.members, member])
    return study


def _files(old: dict[str, str], values: dict[str, Any], new: dict[str, str]) -> dict[str, str]:
    """Keys set again without @file lose their file origin."""
    kept = {k: v for k, v in old.items() if k not in values}
    return {**kept, **new}
