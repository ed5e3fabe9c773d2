"""method: bayes on a real SQLite store, driven through the real job decisions (claim,
start, finish) as a worker does, with a real objective written to each run's
``metrics.jsonl``: each end proposes the next point in its own transaction, TPE beats
random search on the same budget, the same seed and the same order of ends propose the
same points, and every proposal can be made again from the log and the runs' files."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

import pytest

from whirr.events import (
    JobCancelRequested,
    JobFinished,
    JobSubmitted,
    Pending,
    SweepJobAdded,
    job_stream,
)
from whirr.project import init_project
from whirr.projections.queue import Capacity
from whirr.services import Jobs
from whirr.store import EventStore
from whirr.sweeps import SweepFileError, expand, optuna_study, parse_spec
from whirr.sweeps.bayes import parameters_of
from whirr.sweeps.optuna_study import Trial
from whirr.sweeps.progress import progress
from whirr.sweeps.service import Sweeps

SPEC = """\
program: python objective.py
method: bayes
max_runs: {runs}
max_concurrent: 2
metric: {{name: loss, goal: minimize}}
parameters:
  x: {{distribution: uniform, min: -3, max: 3}}
  y: {{distribution: uniform, min: -3, max: 3}}
  kind: {{distribution: categorical, values: [a, b, c]}}
  epochs: 3
"""
SHIFT = {"a": 0.0, "b": 0.5, "c": 2.0}


def objective(config: dict[str, Any]) -> float:
    """A bowl with its floor (0) at x=0.7, y=-0.3, kind a."""
    return (config["x"] - 0.7) ** 2 + (config["y"] + 0.3) ** 2 + SHIFT[config["kind"]]


def drive(store: EventStore, runs: Path, newest_first: bool = True) -> list[dict[str, Any]]:
    """Run the sweep's jobs as a worker would, each reporting ``objective`` when it
    ends: claim every queued job, end one (the newest or the oldest running), repeat.
    Returns the configs in the order the jobs ended."""
    jobs = Jobs(store)
    running = []
    ended = []
    for _ in range(500):
        while (job := jobs.claim("w", 60, capacity=Capacity((), 4))) is not None:
            run_dir = runs / job.run_id
            run_dir.mkdir(parents=True)
            jobs.started(job.id, "w", job.attempt, os.getpid(), run_dir=str(run_dir), hostname="h")
            running.append(job)
        if not running:
            return ended
        job = running.pop(-1 if newest_first else 0)
        row = {"_idx": 0, "step": 0, "loss": objective(job.config)}
        (runs / job.run_id / "metrics.jsonl").write_text(json.dumps(row) + "\n")
        jobs.finish(job.id, "w", job.attempt, 0)
        ended.append(job.config)
    raise AssertionError("the sweep did not end in 500 steps")


def swept(tmp_path: Path, seed: int, runs: int, newest_first: bool = True) -> list[Any]:
    """A bayes sweep of ``runs`` points run to its end: its points, by index."""
    project, _ = init_project(tmp_path / f"p{seed}-{newest_first}")
    store = project.open_store()
    try:
        Sweeps(store).create(
            parse_spec(SPEC.format(runs=runs)), "bowl", str(tmp_path), seed=seed, check=False
        )
        ended = drive(store, tmp_path / f"runs-{seed}-{newest_first}", newest_first)
        assert len(ended) == runs
        record = Sweeps(store).get("bowl")
        assert [m.index for m in record.members] == list(range(runs))
        assert sorted(map(str, ended)) == sorted(str(m.config) for m in record.members)
        return [m.config for m in record.members]
    finally:
        store.close()


def test_bayes_finds_better_points_than_random_on_the_same_budget(tmp_path: Path) -> None:
    runs = 20
    bayes = [min(objective(c) for c in swept(tmp_path, seed, runs)) for seed in range(8)]
    # What random search expects on this budget, from 400 of whirr's random sweeps (a
    # stable figure: about 1.03; 8 random sweeps alone would vary too much to compare).
    spec = parse_spec(SPEC.format(runs=runs).replace("bayes", "random").replace("max_conc", "#"))
    expected = statistics.mean(
        min(objective(c) for c in expand.points(spec, 1000 + seed)) for seed in range(400)
    )
    assert 0.9 < expected < 1.2
    # Measured with Optuna 5.1: 0.52 on average over these 8 seeds (0.45 over 20).
    assert statistics.mean(bayes) < 0.7 * expected, (bayes, expected)


def test_same_seed_and_order_of_ends_proposes_the_same_points(tmp_path: Path) -> None:
    first = swept(tmp_path / "a", 5, 10)
    again = swept(tmp_path / "b", 5, 10)
    assert first == again
    assert swept(tmp_path / "c", 6, 10) != first
    # Another order of ends is another history: the search may go elsewhere, from the
    # same first points (queued before any end).
    other = swept(tmp_path / "d", 5, 10, newest_first=False)
    assert other[:2] == first[:2]


def test_every_proposal_is_made_again_from_the_log_and_the_files(tmp_path: Path) -> None:
    project, _ = init_project(tmp_path / "p")
    store = project.open_store()
    try:
        spec = parse_spec(SPEC.format(runs=9))
        record, queued = Sweeps(store).create(spec, "bowl", str(tmp_path), seed=11, check=False)
        assert [j.name for j in queued] == ["bowl-0", "bowl-1"]  # max_concurrent
        assert all(j.config["epochs"] == 3 for j in queued)
        drive(store, tmp_path / "runs")
        created = record.created
        parameters = parameters_of(created)
        # Walk the log: each sweep.job_added is proposed from the points before it, as
        # their jobs stood at that position (ended ones with their runs' values).
        status: dict[int, str] = {}
        points: list[tuple[int, dict[str, Any]]] = []
        checked = 0
        for rec in store.read():
            event = rec.event
            if isinstance(event, JobSubmitted):
                status[event.job_id] = "running"
            elif isinstance(event, JobFinished):
                status[event.job_id] = event.outcome
            elif isinstance(event, SweepJobAdded):
                trials = []
                for index, (job_id, config) in enumerate(points):
                    if status[job_id] == "running":
                        trials.append(Trial(index, config, "running"))
                    else:
                        value = objective(config)
                        trials.append(Trial(index, config, "complete", value, {0: value}))
                again = optuna_study.propose(
                    parameters, trials, index=event.index, goal="minimize", seed=11
                )
                assert again == event.config, event.index
                points.append((event.job_id, event.config))
                checked += 1
                # max_concurrent: never more than 2 of its jobs queued or running.
                assert sum(status[job_id] == "running" for job_id, _ in points) <= 2
        assert checked == 9
    finally:
        store.close()


def test_a_job_cancelled_by_hand_is_not_replaced_a_pruned_one_is(tmp_path: Path) -> None:
    project, _ = init_project(tmp_path / "p")
    store = project.open_store()
    try:
        sweeps, jobs = Sweeps(store), Jobs(store)
        sweeps.create(parse_spec(SPEC.format(runs=6)), "bowl", str(tmp_path), seed=2, check=False)

        def start() -> Any:
            job = jobs.claim("w", 60, capacity=Capacity((), 1))
            assert job is not None
            run_dir = tmp_path / job.run_id
            run_dir.mkdir()
            jobs.started(job.id, "w", job.attempt, os.getpid(), run_dir=str(run_dir), hostname="h")
            return job

        running = start()
        jobs.cancel(running.id)  # by hand: its worker stops it
        assert jobs.finish(running.id, "w", running.attempt, -15).status == "cancelled"
        jobs.cancel(2)  # a queued one ends at once
        assert len(sweeps.get("bowl").members) == 2  # neither replaced
        listed = sweeps.get("bowl")
        statuses = {m.job_id: jobs.get(m.job_id).status for m in listed.members}
        assert progress(listed, statuses).state == "incomplete"
        # resume proposes up to max_concurrent again.
        _, queued = sweeps.resume("bowl")
        assert [j.name for j in queued] == ["bowl-2", "bowl-3"]
        assert progress(sweeps.get("bowl"), {j.id: "queued" for j in queued}).state == "active"

        # A job the pruner cancelled ends with error pruned, and is replaced.
        pruned = start()

        def prune(_: Any) -> list[Pending]:
            cancel = JobCancelRequested(job_id=pruned.id, reason="pruned")
            return [Pending(job_stream(pruned.id), cancel)]

        store.transact(prune)
        ended = jobs.finish(pruned.id, "w", pruned.attempt, -15)
        assert (ended.status, ended.state.error) == ("cancelled", "pruned")
        assert [m.index for m in sweeps.get("bowl").members] == [0, 1, 2, 3, 4]
    finally:
        store.close()


def test_a_bayes_sweep_plans_at_most_max_jobs(tmp_path: Path) -> None:
    spec = parse_spec(SPEC.format(runs=expand.MAX_JOBS + 1))
    project, _ = init_project(tmp_path / "p")
    store = project.open_store()
    try:
        with pytest.raises(SweepFileError, match="max_runs plans 100001 jobs"):
            Sweeps(store).create(spec, "bowl", str(tmp_path), check=False)
        assert store.jobs() == []
    finally:
        store.close()
