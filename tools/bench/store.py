"""Store benchmark: the same workload on SQLite and PostgreSQL, medians over repeats.

    .venv/bin/python tools/bench/store.py [--events 20000] [--repeats 5]

PostgreSQL is measured when ``WHIRR_TEST_POSTGRES_URL`` is set (``eval "$(tools/ci/
postgres.sh)"``); the benchmark works in a scratch schema it drops afterwards. Figures:

- append: one single-event ``append`` (a transaction), median latency;
- cycle: submit + claim + started + finish of one job through ``Jobs``, per second, with
  1 thread, 4 threads on 4 handles (separate pools, as separate processes would be), and
  16 threads sharing one handle (as the API server's writer threads do: on PostgreSQL
  their transactions are group-committed together);
- wake-up: from ``append`` in one thread to ``wait`` returning in another, median;
- rebuild: ``rebuild()`` of a log of ``--events`` events.

The memory store runs the same workload as the in-process reference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# This directory holds queue.py (the queue benchmark), which would shadow the standard
# library's ``queue`` for anything imported from here (psycopg uses it): drop it from the path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]

from whirr.events import Pending, WorkerSeen, worker_stream  # noqa: E402
from whirr.services import Jobs  # noqa: E402
from whirr.store import EventStore, open_store  # noqa: E402
from whirr.store.memory import MemoryStore  # noqa: E402

SEEN = Pending(worker_stream("bench"), WorkerSeen(worker_id="bench"))


@contextmanager
def sqlite_log() -> Iterator[Callable[[], EventStore]]:
    """Handles on a scratch SQLite file."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/whirr.db"
        yield lambda: open_store(url)


@contextmanager
def postgres_log(base: str) -> Iterator[Callable[[], EventStore]]:
    """Handles on a scratch schema of the PostgreSQL database at ``base``."""
    import psycopg
    from psycopg import sql

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    parts = urlsplit(base)
    query = [*parse_qsl(parts.query), ("options", f"-csearch_path={name}")]
    url = urlunsplit(parts._replace(query=urlencode(query)))
    try:
        yield lambda: open_store(url)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@contextmanager
def memory_log() -> Iterator[Callable[[], EventStore]]:
    """Handles on one in-memory log."""
    store = MemoryStore()
    yield lambda: store


def append_latency(store: EventStore, n: int = 200) -> float:
    """Median seconds per single-event append."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        store.append([SEEN])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cycles_per_second(handles: list[EventStore], per_thread: int) -> float:
    """Submit, claim, start and finish jobs from one thread per handle."""

    def work(store: EventStore, worker: str) -> None:
        jobs = Jobs(store)
        for _ in range(per_thread):
            jobs.submit(["true"], "/", check=False)
            job = jobs.claim(worker, 600)
            if job is None:
                continue
            jobs.started(job.id, worker, job.attempt, pid=1, run_dir="/tmp", hostname="h")
            jobs.finish(job.id, worker, job.attempt, exit_code=0)

    threads = [threading.Thread(target=work, args=(s, f"w{i}")) for i, s in enumerate(handles)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(handles) * per_thread / (time.perf_counter() - start)


def wake_latency(waiter: EventStore, writer: EventStore, n: int = 30) -> float:
    """Median seconds from an append to another thread's ``wait`` returning."""
    times = []
    for _ in range(n):
        ready, woke = threading.Event(), [0.0]
        thread = threading.Thread(target=_wait, args=(waiter, writer.head(), ready, woke))
        thread.start()
        ready.wait()
        time.sleep(0.02)  # let it block
        start = time.perf_counter()
        writer.append([SEEN])
        thread.join()
        times.append(woke[0] - start)
    return statistics.median(times)


def _wait(store: EventStore, after: int, ready: threading.Event, woke: list[float]) -> None:
    ready.set()
    store.wait(after, 10)
    woke[0] = time.perf_counter()


def rebuild_seconds(store: EventStore, events: int, repeats: int) -> float:
    """Median seconds to rebuild a log of ``events`` job events."""
    jobs = Jobs(store)
    batch = [Pending(worker_stream("bench"), WorkerSeen(worker_id="bench"))] * 100
    while store.head() < events:
        jobs.submit(["true"], "/", check=False)
        store.append(batch[: min(100, max(0, events - store.head() - 1))])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        store.rebuild()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    name: str, log: Callable[[], Iterator[Callable[[], EventStore]]], events: int, repeats: int
) -> None:
    """Print one backend's figures."""
    with log() as open_handle:  # type: ignore[attr-defined]
        handles = [open_handle() for _ in range(4)]
        try:
            append = statistics.median(append_latency(handles[0]) for _ in range(repeats))
            one = statistics.median(cycles_per_second(handles[:1], 50) for _ in range(repeats))
            four = statistics.median(cycles_per_second(handles, 25) for _ in range(repeats))
            shared = statistics.median(
                cycles_per_second(handles[:1] * 16, 25) for _ in range(repeats)
            )
            wake = wake_latency(handles[0], handles[1])
            rebuild = rebuild_seconds(handles[0], events, repeats)
        finally:
            for h in {id(h): h for h in handles}.values():
                h.close()
    print(
        f"{name:<10} append {append * 1e3:7.2f} ms   cycles/s 1 thread {one:7.0f}   "
        f"4 threads {four:7.0f}   16 threads/1 handle {shared:7.0f}   "
        f"wake-up {wake * 1e3:6.2f} ms   "
        f"rebuild {events} events {rebuild:6.2f} s"
    )


def main() -> None:
    """Run the benchmark on every backend available."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    measure("memory", memory_log, args.events, args.repeats)
    measure("sqlite", sqlite_log, args.events, args.repeats)
    base = os.environ.get("WHIRR_TEST_POSTGRES_URL")
    if base:
        measure("postgres", lambda: postgres_log(base), args.events, args.repeats)
    else:
        print("postgres   skipped: WHIRR_TEST_POSTGRES_URL is not set")


if __name__ == "__main__":
    main()
