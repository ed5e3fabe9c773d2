"""Events of an ablation study: created, baseline set, delta added, launched, job queued."""

from typing import Any

from whirr.events.base import Event
from whirr.events.bounds import Index, JobId, Replicates, Seed


class AblationCreated(Event, frozen=True, tag="ablation.created"):
    """An ablation study began; replicate ``r`` of every condition runs with seed
    ``seed_base + r`` (paired seeds)."""

    ablation: str
    metric: str
    seed_base: Seed
    replicates: Replicates = 20


class AblationBaselineSet(Event, frozen=True, tag="ablation.baseline_set"):
    """Baseline values were set; keys merge over earlier ones. ``files`` maps a key whose
    value came from ``@file`` to that file's path (the value holds its text)."""

    ablation: str
    values: dict[str, Any]
    files: dict[str, str] = {}


class AblationDeltaAdded(Event, frozen=True, tag="ablation.delta_added"):
    """A delta (a change against the baseline) was added, or replaced under its name."""

    ablation: str
    delta: str
    values: dict[str, Any]
    files: dict[str, str] = {}


class AblationLaunched(Event, frozen=True, tag="ablation.launched"):
    """``ablate run`` started submitting ``command`` (with ``{{seed}}``/``{{cfg_path}}``)."""

    ablation: str
    command: list[str]
    replicates: Replicates
    workdir: str


class AblationJobAdded(Event, frozen=True, tag="ablation.job_added"):
    """Job ``job_id`` runs ``condition`` for ``replicate`` (same transaction as its submit)."""

    ablation: str
    job_id: JobId
    condition: str
    replicate: Index
    seed: Seed
    cfg_path: str = ""


def ablation_stream(name: str) -> str:
    """The stream name of an ablation study's events."""
    return f"ablation-{name}"
