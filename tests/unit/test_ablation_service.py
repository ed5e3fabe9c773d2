"""Ablation studies on the event log: state, resumable runs, ranking from run results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whirr.ablations.service import Ablations
from whirr.events import AblationJobAdded, JobSubmitted, Pending, RunSummaryUpdated, run_stream
from whirr.services import Jobs
from whirr.services.errors import InvalidRequest, InvalidState, NotFound
from whirr.store.memory import MemoryStore
from whirr.studies.results import StoreResults

CMD = ["python", "eval.py", "--seed", "{{seed}}", "--cfg", "{{cfg_path}}"]


@pytest.fixture
def studies(tmp_path: Path) -> Ablations:
    service = Ablations(MemoryStore(), tmp_path / "ablations")
    service.create("s", "score", replicates=3, seed_base=100)
    service.set_baseline("s", {"t": 0.7, "k": 5})
    service.add_delta("s", {"t": 0.0}, delta="cold")
    return service


def test_state_is_folded_from_the_log(studies: Ablations) -> None:
    studies.set_baseline("s", {"k": 6})
    studies.add_delta("s", {"k": 1})
    _, replaced = studies.add_delta("s", {"t": 0.1}, delta="cold")
    study = studies.get("s")
    assert replaced
    assert study.baseline == {"t": 0.7, "k": 6}
    assert [d.name for d in study.deltas] == ["cold", "k"]  # replaced in place
    assert study.conditions == {
        "baseline": {"t": 0.7, "k": 6},
        "cold": {"t": 0.1, "k": 6},
        "k": {"t": 0.7, "k": 1},
    }


def test_names_and_deltas_are_checked(studies: Ablations) -> None:
    with pytest.raises(InvalidState, match="an ablation study named 's' already exists"):
        studies.create("s", "x")
    with pytest.raises(InvalidRequest, match="`baseline` names the baseline itself"):
        studies.add_delta("s", {"t": 1}, delta="baseline")
    with pytest.raises(NotFound, match="no ablation study named 'nope'"):
        studies.add_delta("nope", {"t": 1})
    with pytest.raises(InvalidRequest, match="not a usable study name"):
        studies.create("a b", "x")


def test_run_queues_paired_cells_writes_configs_and_links_each_job(
    studies: Ablations, tmp_path: Path
) -> None:
    jobs = studies.run("s", CMD, str(tmp_path))
    assert [j.name for j in jobs] == [
        "s-baseline-0",
        "s-cold-0",
        "s-baseline-1",
        "s-cold-1",
        "s-baseline-2",
        "s-cold-2",
    ]
    cold1 = jobs[3]
    cfg = tmp_path / "ablations" / "s" / "configs" / "cold-1.json"
    assert cold1.command_argv == ["python", "eval.py", "--seed", "101", "--cfg", str(cfg)]
    assert cold1.tags == ["ablate:s", "condition:cold"]
    assert json.loads(cfg.read_text()) == {
        "t": 0.0,
        "k": 5,
        "__ablate__": {"ablation": "s", "condition": "cold", "replicate": 1, "seed": 101},
    }
    events = [r.event for r in studies.store.read()]
    for i, event in enumerate(events):
        if isinstance(event, JobSubmitted):  # its study link follows in the same append
            linked = events[i + 1]
            assert isinstance(linked, AblationJobAdded) and linked.job_id == event.job_id


def test_running_again_queues_only_missing_or_failed_cells(
    studies: Ablations, tmp_path: Path
) -> None:
    first = studies.run("s", CMD, str(tmp_path), replicates=2)
    Jobs(studies.store).cancel(first[0].id)  # baseline-0 cancelled: it needs a new job
    studies.add_delta("s", {"k": 9}, delta="nine")
    again = studies.run("s", CMD, str(tmp_path), replicates=2)
    assert [j.name for j in again] == ["s-baseline-0", "s-nine-0", "s-nine-1"]
    assert studies.run("s", CMD, str(tmp_path), replicates=2) == []
    with pytest.raises(InvalidState, match="ran before with a different command"):
        studies.run("s", ["python", "other.py"], str(tmp_path), replicates=3)


def test_run_needs_deltas_and_a_command(tmp_path: Path) -> None:
    service = Ablations(MemoryStore(), tmp_path)
    service.create("e", "m")
    with pytest.raises(InvalidState, match="has no deltas yet"):
        service.run("e", CMD, str(tmp_path))
    service.add_delta("e", {"x": 1})
    with pytest.raises(InvalidRequest, match="give the command after --"):
        service.run("e", [], str(tmp_path))


def finish(
    store: MemoryStore, job_id: int, run_dir: Path, score: float | None, exit_code: int = 0
) -> None:
    jobs = Jobs(store)
    claimed = jobs.claim("w", 60)
    assert claimed is not None and claimed.id == job_id
    job = jobs.started(
        job_id, "w", claimed.attempt, pid=1, run_dir=str(run_dir / str(job_id)), hostname="h"
    )
    if score is not None:
        store.append(
            [
                Pending(
                    run_stream(job.run_id),
                    RunSummaryUpdated(run_id=job.run_id, summary={"score": score}),
                )
            ]
        )
    jobs.finish(job_id, "w", claimed.attempt, exit_code)


def test_rank_uses_paired_differences_and_reports_what_is_missing(
    studies: Ablations, tmp_path: Path
) -> None:
    studies.add_delta("s", {"k": 1}, delta="hot")
    jobs = studies.run("s", CMD, str(tmp_path))
    by_name = {j.name: j.id for j in jobs}
    store = studies.store
    scores = {"baseline": [1.0, 5.0, 3.0], "cold": [1.5, 5.4, 3.6], "hot": [0.0, 3.0, None]}
    for replicate in range(3):
        for condition in ("baseline", "cold", "hot"):
            job_id = by_name[f"s-{condition}-{replicate}"]
            score = scores[condition][replicate]
            if condition == "hot" and replicate == 2:
                continue  # left queued: pending
            finish(store, job_id, tmp_path, score)  # type: ignore[arg-type]
    ranking = studies.rank("s", StoreResults(store, tmp_path))
    assert [e.delta for e in ranking.effects] == ["hot", "cold"]
    hot, cold = ranking.effects
    assert hot.effect == pytest.approx(-1.5) and hot.n == 2  # replicate 2 still pending
    assert cold.effect == pytest.approx(0.5) and cold.agree == 3
    assert cold.ci_low is not None and cold.ci_high is not None
    assert 0.4 - 1e-9 <= cold.ci_low <= cold.ci_high <= 0.6 + 1e-9
    assert ranking.pending == 1
