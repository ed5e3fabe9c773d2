"""Random, valid-ish operation sequences through the services (for rebuild == incremental).

Each operation is a tuple drawn by hypothesis; ``apply_op`` runs it through ``Jobs`` and
``Workers`` the way the CLI, workers and API would, so the log holds what real use
produces: including rejected requests (stale attempts, finished jobs), which must change
nothing.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from store_support import Clock

from whirr.events import Pending, RunArtifactSaved, RunSummaryUpdated, run_stream
from whirr.projections.jobs import Running
from whirr.services import Jobs, WhirrError, Workers
from whirr.services.management import Management
from whirr.services.queue import Queue
from whirr.store import EventStore

WORKERS = ["w1", "w2", "gpu-ä"]
_job = st.integers(0, 30)
_worker = st.sampled_from(WORKERS)
_number = st.floats(allow_nan=False, allow_infinity=False, width=64)

OPERATIONS = st.one_of(
    st.tuples(
        st.just("submit"),
        st.integers(-2, 2),
        st.lists(st.sampled_from(["a", "b", "ü"]), max_size=2, unique=True),
        st.lists(_job, max_size=2),
        st.booleans(),
        st.integers(0, 2),
    ),
    st.tuples(st.just("priority"), _job, st.integers(-3, 3)),
    st.tuples(st.just("pause")),
    st.tuples(st.just("resume")),
    st.tuples(st.just("claim"), _worker, st.sampled_from([5.0, 30.0])),
    st.tuples(st.just("start"), _job),
    st.tuples(st.just("heartbeat"), _job),
    st.tuples(st.just("finish"), _job, st.sampled_from([0, 1, -9, None])),
    st.tuples(st.just("stale_finish"), _job),
    st.tuples(st.just("cancel"), _job),
    st.tuples(st.just("cancel_all_queued")),
    st.tuples(st.just("retry"), _job),
    st.tuples(st.just("expire"), st.floats(0, 60)),
    st.tuples(st.just("register"), _worker),
    st.tuples(st.just("seen"), _worker),
    st.tuples(st.just("stopped"), _worker),
    st.tuples(
        st.just("summary"),
        _job,
        st.dictionaries(st.sampled_from(["loss", "acc"]), _number, max_size=2),
    ),
    st.tuples(
        st.just("artifact"), _job, st.sampled_from(["model.pt", "a/b.txt"]), st.integers(0, 10**9)
    ),
    # Run and job management (issue 19): each goes through the service as the CLI does.
    st.tuples(st.just("rename"), _job, st.sampled_from(["a", "b-ü"])),
    st.tuples(st.just("tag"), _job, st.lists(st.sampled_from(["x", "y", "z"]), min_size=1)),
    st.tuples(st.just("untag"), _job, st.lists(st.sampled_from(["x", "a"]), min_size=1)),
    st.tuples(st.just("note"), _job, st.sampled_from(["n1", "n2"]), st.booleans()),
    st.tuples(st.just("archive"), _job, st.booleans()),
    st.tuples(st.just("config"), _job, st.dictionaries(st.sampled_from(["b", "c"]), _number)),
    st.tuples(st.just("delete_run"), _job),
    st.tuples(st.just("clean"), st.sampled_from([None, "failed", "completed"])),
)

_MANAGE = {"rename", "tag", "untag", "note", "archive", "config", "delete_run"}


def apply_op(store: EventStore, jobs: Jobs, clock: Clock, op: tuple[Any, ...]) -> None:
    """Run one operation; requests the services reject are part of the game."""
    workers = Workers(store)
    kind = op[0]
    top = store.max_job_id()
    target = op[1] if kind != "submit" and len(op) > 1 and isinstance(op[1], int) else None
    job = store.job(target % top + 1) if top and target is not None else None
    held = job is not None and isinstance(job.state, Running)
    try:
        if kind == "submit":
            after = sorted({i % top + 1 for i in op[3]}) if top else []
            jobs.submit(
                ["true"],
                "/",
                check=False,
                priority=op[1],
                tags=op[2],
                after=after,
                after_any=op[4],
                retries=op[5],
                retry_delay=5.0,
            )
        elif kind == "pause":
            Queue(store).pause("test")
        elif kind == "resume":
            Queue(store).resume()
        elif kind == "claim":
            jobs.claim(op[1], lease_seconds=op[2])
        elif kind == "expire":
            clock.advance(op[1])
            jobs.requeue_expired()
        elif kind == "register":
            workers.register(op[1], "host", gpu_ids=[0])
        elif kind == "seen":
            workers.seen(op[1])
        elif kind == "stopped":
            workers.stopped(op[1], reason="test")
        elif kind == "cancel_all_queued":
            jobs.cancel_all_queued()
        elif kind == "clean":
            Management(store).clean(statuses=[op[1]] if op[1] else None, now=clock())
        elif job is None:
            return
        elif kind in _MANAGE:
            _manage(Management(store), job.run_id, op)
        elif kind == "cancel":
            jobs.cancel(job.id)
        elif kind == "retry":
            jobs.retry(job.id)
        elif kind == "priority":
            Queue(store).set_priority(job.id, op[2])
        elif kind == "summary":
            store.append(
                [
                    Pending(
                        run_stream(job.run_id), RunSummaryUpdated(run_id=job.run_id, summary=op[2])
                    )
                ]
            )
        elif kind == "artifact":
            store.append(
                [
                    Pending(
                        run_stream(job.run_id),
                        RunArtifactSaved(run_id=job.run_id, path=op[2], size=op[3]),
                    )
                ]
            )
        elif held:
            worker = job.worker_id or ""
            if kind == "start":
                jobs.started(
                    job.id,
                    worker,
                    job.attempt,
                    pid=1000 + job.id,
                    run_dir=f"/runs/{job.run_id}",
                    hostname="host",
                )
            elif kind == "heartbeat":
                jobs.heartbeat(job.id, worker, job.attempt, lease_seconds=30)
            elif kind == "finish":
                jobs.finish(job.id, worker, job.attempt, exit_code=op[2])
            elif kind == "stale_finish":
                jobs.finish(job.id, worker, job.attempt - 1, exit_code=0)
    except WhirrError:
        pass


def _manage(manage: Management, run_id: str, op: tuple[Any, ...]) -> None:
    """One run-management operation (a run that does not exist yet is refused)."""
    kind = op[0]
    if kind == "rename":
        manage.rename(run_id, op[2])
    elif kind == "tag":
        manage.add_tags(run_id, op[2])
    elif kind == "untag":
        manage.remove_tags(run_id, op[2])
    elif kind == "note":
        manage.note(run_id, op[2], append=op[3])
    elif kind == "archive":
        manage.set_archived(run_id, op[2])
    elif kind == "config":
        manage.update_config(run_id, op[2])
    else:
        manage.delete(run_id)
