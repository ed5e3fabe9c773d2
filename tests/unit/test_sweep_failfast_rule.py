"""Fail fast (``whirr.sweeps.failfast``): the rule decided by the end that makes N, in the
same transaction, over a real store (jobs claimed, started and finished by the services,
run directories on disk); and ``--check``'s reading of ``program --help``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from whirr.events import JobHeld, Pending, SweepFailFastCleared, SweepPaused
from whirr.projections.jobs import Queued
from whirr.services import Jobs
from whirr.services.waiting import waiting_note
from whirr.store.memory import MemoryStore
from whirr.sweeps.failfast import End, paused_reason
from whirr.sweeps.flags import check_flags, closest, compare, listed_options
from whirr.sweeps.service import Sweeps
from whirr.sweeps.spec import SweepFileError, parse_spec

WORKER = "w1"


def make_sweep(store: MemoryStore, tmp_path: Path, points: int = 6, extra: str = "") -> list[int]:
    spec = parse_spec(f"program: python train.py\n{extra}parameters:\n  x: {list(range(points))}\n")
    _, jobs = Sweeps(store).create(spec, "s", str(tmp_path), check=False)
    return [j.id for j in jobs]


def run_next(
    store: MemoryStore,
    tmp_path: Path,
    exit_code: int | None,
    *,
    metric: bool = False,
    outcome: str | None = None,
) -> int:
    """Claim the next job, start it (its run directory on disk, with a metrics row when
    ``metric``) and end it with ``exit_code``; its id."""
    jobs = Jobs(store)
    job = jobs.claim(WORKER, 60)
    assert job is not None
    run_dir = tmp_path / "runs" / job.run_id
    run_dir.mkdir(parents=True)
    if metric:
        (run_dir / "metrics.jsonl").write_text('{"_idx": 0, "loss": 1.0}\n')
    jobs.started(job.id, WORKER, job.attempt, 1234, run_dir=str(run_dir), hostname="h")
    jobs.finish(job.id, WORKER, job.attempt, exit_code, outcome=outcome)  # type: ignore[arg-type]
    return job.id


def sweep_events(store: MemoryStore, kind: type) -> list:
    return [r.event for r in store.read(stream="sweep-s") if isinstance(r.event, kind)]


def test_three_identical_silent_failures_hold_the_rest_until_released(tmp_path: Path) -> None:
    store = MemoryStore()
    ids = make_sweep(store, tmp_path)
    ended = [run_next(store, tmp_path, 2) for _ in range(3)]
    assert ended == ids[:3]

    (paused,) = sweep_events(store, SweepPaused)
    assert paused.failed == ids[:3] and paused.exit_code == 2 and paused.held == ids[3:]
    assert "first 3 jobs to end (#1, #2, #3) all failed with exit code 2" in paused.reason
    held = [r.event for r in store.read() if isinstance(r.event, JobHeld)]
    assert [h.job_id for h in held] == ids[3:]
    # Held jobs stay queued, are never claimed, and say why.
    assert Jobs(store).claim(WORKER, 60) is None
    job = store.job(ids[3])
    assert job is not None and isinstance(job.state, Queued) and job.held is not None
    note = waiting_note(job, job.created_at, lambda: [])
    assert note == (
        "held: sweep s paused: #1, #2, #3 failed with exit 2, no metric; `whirr sweep resume s`"
    )
    record = Sweeps(store).get("s")
    assert record.fail_fast == "paused" and record.paused == paused

    assert Sweeps(store).release("s") == ids[3:]
    assert Sweeps(store).get("s").fail_fast == "resumed"
    assert Sweeps(store).release("s") == []  # not paused any more
    # Released: claimed again; a fourth identical failure does not pause it again.
    run_next(store, tmp_path, 2)
    assert len(sweep_events(store, SweepPaused)) == 1
    assert store.job(ids[5]).held is None  # type: ignore[union-attr]


def test_a_running_job_is_not_held_and_a_cancel_clears_the_hold(tmp_path: Path) -> None:
    store = MemoryStore()
    ids = make_sweep(store, tmp_path, points=5)
    jobs = Jobs(store)
    first_two = [run_next(store, tmp_path, 1) for _ in range(2)]
    running = jobs.claim(WORKER, 60)  # job 3 runs while job 4's end makes it 3
    assert running is not None
    run_next(store, tmp_path, 1)
    (paused,) = sweep_events(store, SweepPaused)
    assert paused.failed == [*first_two, ids[3]] and paused.held == [ids[4]]
    jobs.cancel(ids[4])
    assert store.job(ids[4]).held is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "ends",
    [
        [(2, False), (2, True), (2, False)],  # one logged a metric
        [(2, False), (1, False), (2, False)],  # not the same exit code
        [(2, False), (0, False), (2, False)],  # one completed
    ],
    ids=["a-metric", "other-exit-code", "one-completed"],
)
def test_anything_but_identical_silent_failures_clears_the_rule(
    tmp_path: Path, ends: list[tuple[int, bool]]
) -> None:
    store = MemoryStore()
    ids = make_sweep(store, tmp_path)
    for code, metric in ends:
        run_next(store, tmp_path, code, metric=metric)
    assert sweep_events(store, SweepPaused) == []
    (cleared,) = sweep_events(store, SweepFailFastCleared)
    assert cleared.ended == ids[:3]
    for _ in range(3):  # settled: later failures change nothing
        run_next(store, tmp_path, 2)
    assert len(sweep_events(store, SweepFailFastCleared)) == 1
    assert sweep_events(store, SweepPaused) == []
    assert Sweeps(store).get("s").fail_fast == "cleared"


def test_a_timeout_is_not_a_failure_of_the_command(tmp_path: Path) -> None:
    store = MemoryStore()
    make_sweep(store, tmp_path)
    run_next(store, tmp_path, 2)
    run_next(store, tmp_path, -9, outcome="timed_out")
    run_next(store, tmp_path, 2)
    assert sweep_events(store, SweepPaused) == []


def test_n_comes_from_the_file_or_the_caller_and_zero_turns_it_off(tmp_path: Path) -> None:
    store = MemoryStore()
    ids = make_sweep(store, tmp_path, extra="fail_fast: 2\n")
    run_next(store, tmp_path, 3)
    run_next(store, tmp_path, 3)
    (paused,) = sweep_events(store, SweepPaused)
    assert paused.failed == ids[:2]

    off = MemoryStore()
    make_sweep(off, tmp_path / "off", extra="fail_fast: false\n")
    for _ in range(4):
        run_next(off, tmp_path / "off", 2)
    assert sweep_events(off, SweepPaused) == sweep_events(off, SweepFailFastCleared) == []
    assert Sweeps(off).get("s").fail_fast == "off"

    spec = parse_spec("program: python t.py\nparameters:\n  x: [1, 2, 3]\n")
    record, _ = Sweeps(MemoryStore()).create(spec, "t", str(tmp_path), check=False, fail_fast=0)
    assert record.created.fail_fast == 0 and record.fail_fast == "off"


def test_a_run_whose_files_cannot_be_seen_never_pauses(tmp_path: Path) -> None:
    """A server that does not see a worker's run directory cannot tell a silent run."""
    store = MemoryStore()
    make_sweep(store, tmp_path)
    jobs = Jobs(store)
    for _ in range(3):
        job = jobs.claim(WORKER, 60)
        assert job is not None
        gone = str(tmp_path / "elsewhere" / job.run_id)
        jobs.started(job.id, WORKER, job.attempt, 1, run_dir=gone, hostname="h")
        jobs.finish(job.id, WORKER, job.attempt, 2)
    assert sweep_events(store, SweepPaused) == []
    assert len(sweep_events(store, SweepFailFastCleared)) == 1


def test_paused_reason_is_pure() -> None:
    silent = [End(i, "failed", 2, False) for i in (4, 5, 6)]
    assert paused_reason(silent) == (
        "its first 3 jobs to end (#4, #5, #6) all failed with exit code 2 and logged no metric"
    )
    assert paused_reason([*silent[:2], End(6, "failed", 2, None)]) is None
    assert paused_reason([End(i, "failed", None, False) for i in (1, 2, 3)]) is None
    assert paused_reason([]) is None


@pytest.mark.parametrize("bad", ["fail_fast: -1", "fail_fast: many", "fail_fast: 200000"])
def test_a_bad_fail_fast_is_refused_with_its_line(bad: str) -> None:
    with pytest.raises(SweepFileError, match=r"line 2: fail_fast: must be"):
        parse_spec(f"program: python t.py\n{bad}\nparameters:\n  x: [1]\n", source="f.yaml")


# -- --check ---------------------------------------------------------------------------------
HELP = """\
usage: train.py [-h] [--lr LR] [--batch-size BATCH_SIZE] [--amp | --no-amp]

options:
  -h, --help            show this help message and exit
  --lr LR               learning rate
  --batch-size BATCH_SIZE
  --out=FILE            where to write.
"""


def test_the_options_a_help_text_lists_and_the_closest_one() -> None:
    listed = listed_options(HELP)
    assert listed == ["--lr", "--batch-size", "--amp", "--no-amp", "--help", "--out"]
    assert closest("--batch_size", listed) == "--batch-size"
    assert closest("--Lr", listed) == "--lr"
    assert closest("--ouput", listed) == "--out"
    assert closest("--momentum", listed) is None
    result = compare(["p", "--help"], HELP, ["--lr", "--batch_size", "--momentum"])
    assert [(u.flag, u.suggestion) for u in result.unknown] == [
        ("--batch_size", "--batch-size"),
        ("--momentum", None),
    ]
    assert compare(["p"], "usage: p FILE\n", ["--lr"]).problem is not None


def test_check_flags_runs_the_program_once_in_the_workdir_with_a_timeout(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--batch-size')\n"
        "p.parse_args()\n"
    )
    (tmp_path / "plain.py").write_text("import sys\nsys.exit('no options here')\n")
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(30)\n")
    py = sys.executable
    found = check_flags([py, "train.py"], ["--batch_size"], str(tmp_path))
    assert found.problem is None and found.unknown[0].suggestion == "--batch-size"
    plain = check_flags([py, "plain.py"], ["--x"], str(tmp_path))
    assert plain.problem == "it exited 1 (no --help?): no options here"
    slow = check_flags([py, "slow.py"], ["--x"], str(tmp_path), timeout=0.5)
    assert slow.problem == "it did not finish within 0.5s"
    missing = check_flags(["./no-such-program"], ["--x"], str(tmp_path))
    assert missing.problem is not None and missing.problem.startswith("it could not start")


def test_jobs_queued_after_the_pause_are_held_as_they_are_queued(tmp_path: Path) -> None:
    """A sweep still being submitted (here: interrupted, then resumed) can pause first:
    the jobs it queues from then on are held with the others."""
    full = MemoryStore()
    make_sweep(full, tmp_path / "full", points=6)
    store = MemoryStore()
    # The log of a submission interrupted after four jobs: created, then per job
    # job.submitted and sweep.job_added.
    for rec in full.read()[: 1 + 2 * 4]:
        store.append([Pending(rec.stream, rec.event)])
    for _ in range(3):
        run_next(store, tmp_path, 2)
    (paused,) = sweep_events(store, SweepPaused)
    assert paused.held == [4]
    _, queued = Sweeps(store).resume("s")
    assert [j.id for j in queued] == [5, 6]
    assert all(
        j.held is not None and j.held.startswith("sweep s paused: #1, #2, #3") for j in queued
    )
    assert Jobs(store).claim(WORKER, 60) is None
    assert Sweeps(store).release("s") == [4, 5, 6]
