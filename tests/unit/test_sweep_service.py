"""The sweep record on the event log: created once, jobs joined atomically, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whirr.events import JobSubmitted, Pending, RunSummaryUpdated, SweepJobAdded, run_stream
from whirr.services import Jobs
from whirr.services.errors import InvalidRequest, InvalidState, NotFound
from whirr.services.run_files import SkippedLine
from whirr.store.memory import MemoryStore
from whirr.studies.results import TAIL_ROWS, StoreResults, last_logged
from whirr.sweeps import parse_spec
from whirr.sweeps.service import Sweeps

SPEC = parse_spec(
    "program: python train.py\nmetric: {name: acc, goal: maximize}\ntags: [nightly]\n"
    "parameters:\n  lr: [0.1, 0.01]\n  bs: [32]\n"
)


def test_create_queues_named_tagged_jobs_with_config_and_options(tmp_path: Path) -> None:
    store = MemoryStore()
    record, jobs = Sweeps(store).create(SPEC, "lr", str(tmp_path), options={"priority": 4})
    assert [j.name for j in jobs] == ["lr-0", "lr-1"]
    assert [j.tags for j in jobs] == [["sweep:lr", "nightly"]] * 2
    assert [j.config for j in jobs] == [{"lr": 0.1, "bs": 32}, {"lr": 0.01, "bs": 32}]
    assert [j.priority for j in jobs] == [4, 4]
    assert jobs[1].command_argv == ["python", "train.py", "--lr", "0.01", "--bs", "32"]
    assert [(m.index, m.job_id) for m in record.members] == [(0, jobs[0].id), (1, jobs[1].id)]
    assert record.created.submit_options == {"priority": 4}


def test_each_job_joins_the_sweep_in_the_transaction_that_queues_it(tmp_path: Path) -> None:
    store = MemoryStore()
    Sweeps(store).create(SPEC, "lr", str(tmp_path))
    events = [r.event for r in store.read()]
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "SweepCreated",
        "JobSubmitted",
        "SweepJobAdded",
        "JobSubmitted",
        "SweepJobAdded",
    ]
    for submitted, added in zip(events[1::2], events[2::2], strict=True):
        assert isinstance(submitted, JobSubmitted) and isinstance(added, SweepJobAdded)
        assert added.job_id == submitted.job_id


def test_names_are_unique(tmp_path: Path) -> None:
    store = MemoryStore()
    Sweeps(store).create(SPEC, "lr", str(tmp_path))
    with pytest.raises(InvalidState, match="a sweep named 'lr' already exists"):
        Sweeps(store).create(SPEC, "lr", str(tmp_path))
    assert len(store.jobs()) == 2  # nothing queued by the refused sweep


def test_unknown_submit_option_is_refused_before_anything_is_recorded(tmp_path: Path) -> None:
    store = MemoryStore()
    with pytest.raises(InvalidRequest, match="unknown submit option 'gpu_count'"):
        Sweeps(store).create(SPEC, "lr", str(tmp_path), options={"gpu_count": 2})
    assert store.head() == 0


@pytest.mark.parametrize(
    ("submit", "option"),
    [
        ("{priority: high}", "priority"),
        ("{priority: 1.5}", "priority"),
        ("{priority: true}", "priority"),
        ("{after_any: 7}", "after_any"),
        ("{gpus: 1.5}", "gpus"),
        ("{env: {A: 1}}", "env"),
        ("{env: {A: [1]}}", "env"),
        ("{retries: 1000}", "retries"),
    ],
)
def test_a_mistyped_submit_option_is_refused_naming_it_before_anything_is_recorded(
    tmp_path: Path, submit: str, option: str
) -> None:
    """A direct caller of ``Sweeps.create`` (the server's routes, a library user) gets the
    option named, not the store guard's refusal of the first job after the sweep was
    already recorded (issue 18)."""
    store = MemoryStore()
    spec = parse_spec(f"program: echo\nparameters: {{lr: [1]}}\nsubmit: {submit}\n")
    with pytest.raises(InvalidRequest, match=f"invalid submit option '{option}'"):
        Sweeps(store).create(spec, "typed", str(tmp_path))
    value = parse_spec(f"program: echo\nparameters: {{lr: [1]}}\nsubmit: {submit}\n").submit
    with pytest.raises(InvalidRequest, match=f"invalid submit option '{option}'"):
        Sweeps(store).create(SPEC, "typed", str(tmp_path), options=value, check=False)
    assert store.head() == 0  # no sweep.created without its jobs


def test_a_program_that_cannot_run_is_refused(tmp_path: Path) -> None:
    spec = parse_spec("program: ./missing.sh\nparameters: {x: [1]}\n")
    with pytest.raises(InvalidRequest, match="not an executable file"):
        Sweeps(MemoryStore()).create(spec, "s", str(tmp_path))


def test_resume_queues_only_what_an_interrupted_sweep_missed(tmp_path: Path) -> None:
    store = MemoryStore()
    spec = parse_spec(
        "program: python t.py\nmethod: random\nmax_runs: 4\n"
        "parameters:\n  lr: {distribution: log_uniform, min: 1.0e-4, max: 1}\n"
    )
    sweeps = Sweeps(store)
    _, jobs = sweeps.create(spec, "r", str(tmp_path), seed=11)
    expected = [j.config for j in jobs]
    # An interrupted submission: a log holding the sweep and only its first job.
    other = MemoryStore()
    for rec in store.read()[:3]:  # sweep.created, job.submitted, sweep.job_added
        other.append([Pending(rec.stream, rec.event)])
    assert Sweeps(other).report("r", StoreResults(other, tmp_path)).progress.state == "incomplete"
    resumed_record, more = Sweeps(other).resume("r")
    assert len(more) == 3
    assert [m.config for m in resumed_record.members] == expected
    assert Sweeps(other).report("r", StoreResults(other, tmp_path)).progress.state == "active"
    assert Sweeps(other).resume("r")[1] == []


def test_report_counts_progress_and_picks_the_best_run(tmp_path: Path) -> None:
    store = MemoryStore()
    _, jobs = Sweeps(store).create(SPEC, "lr", str(tmp_path))
    service = Jobs(store)
    for job, acc in zip(jobs, [0.7, 0.9], strict=True):
        service.claim("w", 60)
        service.started(job.id, "w", 1, pid=1, run_dir=str(tmp_path / job.run_id), hostname="h")
        store.append(
            [
                Pending(
                    run_stream(job.run_id),
                    RunSummaryUpdated(run_id=job.run_id, summary={"acc": acc}),
                )
            ]
        )
    service.finish(jobs[0].id, "w", 1, 0)
    report = Sweeps(store).report("lr", StoreResults(store, tmp_path))
    assert (report.progress.done, report.progress.running, report.progress.finished) == (1, 1, 1)
    assert report.metric == "acc" and report.goal == "maximize"
    assert report.best is not None and report.best.member.index == 1 and report.best.value == 0.9
    low = Sweeps(store).report("lr", StoreResults(store, tmp_path), goal="minimize")
    assert low.best is not None and low.best.member.index == 0


def test_unknown_sweep_is_not_found() -> None:
    with pytest.raises(NotFound, match="no sweep named 'nope'"):
        Sweeps(MemoryStore()).report("nope", StoreResults(MemoryStore(), Path("runs")))


def test_a_runs_value_is_its_last_logged_one_read_from_the_end(tmp_path: Path) -> None:
    run_dir = tmp_path / "job-1"
    run_dir.mkdir()
    metrics = run_dir / "metrics.jsonl"
    # Logged once at the start, then 10,000 rows of something else: the tail grows until
    # it reaches the value; a torn last line (a write cut short) is not a value.
    rows = [json.dumps({"_idx": 0, "acc": 0.5})]
    rows += [json.dumps({"_idx": i, "loss": 1.0}) for i in range(1, 10_001)]
    metrics.write_text("\n".join(rows) + '\n{"_idx": 10001, "acc": 0.9')
    assert last_logged(tmp_path, "job-1", "acc") == 0.5
    assert last_logged(tmp_path, "job-1", "loss") == 1.0
    assert last_logged(tmp_path, "job-1", "missing") is None
    # Garbled lines near the end make the tail come up short of what it asked for: the
    # rest of the file is still read.
    garbled = ["not json"] * (TAIL_ROWS + 5)
    metrics.write_text("\n".join([rows[0], *garbled, *rows[1:3]]) + "\n")
    with pytest.warns(SkippedLine):  # each garbled line is said, not silently skipped
        assert last_logged(tmp_path, "job-1", "acc") == 0.5
    assert last_logged(tmp_path, "job-2", "acc") is None  # no such run directory
