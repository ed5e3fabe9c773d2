"""The chaos suite's faults: each sets a trial up (workers, jobs) and does its damage at a
random point (the trial's seeded ``rng``); ``Chaos.finish`` then checks the whole.

A lost worker (``kill -9``, its process group killed or hung up, its link cut for longer
than the lease) must cost its job one attempt and nothing more: a healthy worker takes
the next attempt once the lease runs out, and the lost one's copy is gone by then. A
short server stall or restart and a database restart must cost no attempt at all.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from chaos.harness import Chaos, Worker

#: A fault: sets a trial up and does its damage; ``finish`` checks the rest.
Fault = Callable[[Chaos], None]


def _busy_worker(chaos: Chaos, first: float, then: float, **options: Any) -> tuple[Worker, int]:
    """A worker running attempt 1 of a fresh job (``options`` for ``start_worker``)."""
    job = chaos.submit(first, then)
    worker = chaos.start_worker(**options)
    chaos.wait_started(job, 1, timeout=30)
    return worker, job


def _lose_worker(chaos: Chaos, how: str) -> None:
    """A worker dies mid-job at a random point; a healthy one is there to take over."""
    lease = chaos.settings.lease
    victim, job = _busy_worker(chaos, 3 * lease, 1.0, own_session=how != "kill9")
    chaos.start_worker()
    chaos.submit(1.0, 1.0)
    time.sleep(chaos.rng.uniform(0.0, 2.0))
    if how == "kill9":
        lost = chaos.signal_worker(victim, signal.SIGKILL, group=False)
    elif how == "group_kill":
        lost = chaos.signal_worker(victim, signal.SIGKILL, group=True)
    else:
        lost = chaos.signal_worker(victim, signal.SIGHUP, group=True)
    # A worker that outlives SIGHUP may keep the job (fine): no second attempt then.
    if how != "sighup" or _exits(victim, 5.0):
        start = chaos.wait_started(job, 2, timeout=lease + 30)
        chaos.figures["requeue_s"] = start - lost


def _exits(worker: Worker, timeout: float) -> bool:
    try:
        worker.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def worker_kill9(chaos: Chaos) -> None:
    """``kill -9`` of the worker while it runs a job."""
    _lose_worker(chaos, "kill9")


def worker_group_kill(chaos: Chaos) -> None:
    """SIGKILL to the worker's whole process group (the worker started under ``setsid``)."""
    _lose_worker(chaos, "group_kill")


def worker_sighup(chaos: Chaos) -> None:
    """SIGHUP to the worker's process group: what a dropped SSH session does."""
    _lose_worker(chaos, "sighup")


def worker_partition(chaos: Chaos) -> None:
    """The worker's link to the server is cut (a paused TCP proxy) for longer than the
    lease; a healthy worker gets the job's next attempt; the link heals only once that
    attempt has finished, so a copy the cut-off worker kept running shows as overlap."""
    lease = chaos.settings.lease
    victim, job = _busy_worker(chaos, 3 * lease, 1.0, via_proxy=True)
    time.sleep(chaos.rng.uniform(0.0, chaos.settings.beat))
    assert victim.proxy is not None
    victim.proxy.pause()
    lost = time.monotonic()
    chaos.note("the worker's link is cut (proxy paused)")
    chaos.start_worker()
    start = chaos.wait_started(job, 2, timeout=lease + 30)
    chaos.figures["requeue_s"] = start - lost
    chaos.wait_ended([job], timeout=30)
    victim.proxy.resume()
    chaos.note("the link healed (proxy resumed)")


def server_stall(chaos: Chaos) -> None:
    """SIGSTOP of the server for ``Settings.short_stall`` (well under lease - margin -
    heartbeat), then SIGCONT: no job may lose its attempt."""
    stall = chaos.settings.short_stall
    _busy_worker(chaos, stall + 3.0, 1.0)
    chaos.single_attempt.update(chaos.jobs)
    chaos.single_attempt.add(chaos.submit(1.0, 1.0))
    time.sleep(chaos.rng.uniform(0.0, chaos.settings.beat))
    chaos.stall_server(stall)


def server_long_stall(chaos: Chaos) -> None:
    """SIGSTOP of the server for longer than the lease: the job is fenced and requeued
    once, and its next attempt never overlaps the first (bench only: it takes a lease)."""
    lease = chaos.settings.lease
    _busy_worker(chaos, 3 * lease, 1.0)
    chaos.stall_server(lease + 3.0)


def server_restart(chaos: Chaos) -> None:
    """``kill -9`` of the server and a restart on the same port shortly after: no job
    may lose its attempt."""
    _busy_worker(chaos, 6.0, 1.0)
    chaos.single_attempt.update(chaos.jobs)
    chaos.single_attempt.add(chaos.submit(1.0, 1.0))
    time.sleep(chaos.rng.uniform(0.0, chaos.settings.beat))
    chaos.restart_server(chaos.rng.uniform(0.5, 2.0))


def postgres_restart(chaos: Chaos, cluster: Any) -> None:
    """A crash of the server's PostgreSQL (``pg_ctl stop -m immediate``) and its start a
    moment later: no job may lose its attempt."""
    _busy_worker(chaos, 6.0, 1.0)
    chaos.single_attempt.update(chaos.jobs)
    chaos.single_attempt.add(chaos.submit(1.0, 1.0))
    time.sleep(chaos.rng.uniform(0.0, chaos.settings.beat))
    cluster.stop("immediate")
    down = chaos.rng.uniform(1.0, 3.0)
    chaos.note(f"PostgreSQL crashed (stop -m immediate), down for {down:.2f}s")
    time.sleep(down)
    cluster.start()
    chaos.note("PostgreSQL started")


FAULTS: dict[str, Fault] = {
    "worker_kill9": worker_kill9,
    "worker_group_kill": worker_group_kill,
    "worker_sighup": worker_sighup,
    "worker_partition": worker_partition,
    "server_stall": server_stall,
    "server_restart": server_restart,
}
#: Faults that take a trial longer than CI's budget allows; the bench runs them.
BENCH_FAULTS: dict[str, Fault] = {"server_long_stall": server_long_stall}
