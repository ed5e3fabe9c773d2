"""Retention benchmark (issue 19 item 3): a month of 80 GPU workers, retention on its
schedule, the live log extrapolated to a year.

    .venv/bin/python tools/bench/retention.py [--days 30] [--workers 80] [--older-than 7]

Simulates ``--workers`` workers at whirr's default rates (``heartbeat_interval`` 30 s:
a busy worker renews its lease twice a minute, an idle one says ``worker.seen`` twice a
minute) running jobs at a realistic rate (durations log-normal around 2 h, from 10 min
to 12 h; idle gaps around 40 min, so ~75% busy; per job a submit, claim, start, run
start, a metric summary every 10 minutes, run and job ends). The events go into a
SQLite project day by day, as the store would hold them (synthetic timestamps; the rows
written in big transactions, the views brought up by each day's rebuild). After each
simulated day, the retention pass a server runs on its schedule (``whirr server
--retention``): ``rebuild()`` (the day's tail onto the newest checkpoint, timed) and
``archive(older_than=--older-than days)``.

Prints per-day figures, then: the live log (rows and bytes of whirr.db in use) at the
end, its growth per day once retention is in steady state (the second half of the run),
the extrapolation to 365 days (target <= 2 GB), the same log without retention for
comparison, the archive's compressed size, and the time and peak RSS of ``rebuild`` at
the end, in a fresh child process, at its worst moment: a whole period of events after
the newest checkpoint, just before the next pass (target <= 10 s); ``--full`` also times
a full replay through the archive.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

# This directory holds queue.py (the queue benchmark), which would shadow the standard
# library's ``queue`` for anything imported from here: drop it from the path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]

from whirr.events import (  # noqa: E402
    Event,
    JobClaimed,
    JobFinished,
    JobHeartbeat,
    JobStarted,
    JobSubmitted,
    RunFinished,
    RunStarted,
    RunSummaryUpdated,
    WorkerRegistered,
    WorkerSeen,
    job_stream,
    run_stream,
    tag_of,
    worker_stream,
)
from whirr.store import checkpoints  # noqa: E402
from whirr.store.guard import encode_for_append  # noqa: E402
from whirr.store.retention_segments import segments  # noqa: E402
from whirr.store.retention_sqlite import archive, live_counts  # noqa: E402
from whirr.store.sqlite import SQLiteStore  # noqa: E402
from whirr.store.sqlite.store import to_us  # noqa: E402

START = datetime(2030, 1, 1, tzinfo=UTC)
BEAT = 30.0  # whirr's default heartbeat_interval (seconds)
SUMMARY_EVERY = 20  # a metric summary every 20 heartbeats (10 minutes)
DAY = 86_400.0


class Worker:
    """One simulated worker: idle (``worker.seen``) or running one job (heartbeats)."""

    def __init__(self, index: int, rng: random.Random) -> None:
        self.id = f"gpu-{index:02d}"
        self.rng = rng
        self.job: int | None = None
        self.beats = 0
        self.until = rng.uniform(0, 3600)  # staggered first claims

    def duration(self) -> float:
        return min(12 * 3600, max(600, self.rng.lognormvariate(8.6, 0.8)))  # ~2 h median

    def gap(self) -> float:
        return self.rng.expovariate(1 / 2400)  # ~40 min idle


def simulate(workers: int, seed: int = 19) -> Iterator[tuple[float, str, Event]]:
    """An endless stream of ``(seconds since START, stream, event)`` in time order."""
    rng = random.Random(seed)
    fleet = [Worker(i, rng) for i in range(workers)]
    for w in fleet:
        yield 0.0, worker_stream(w.id), WorkerRegistered(worker_id=w.id, hostname=w.id)
    heap = [(BEAT, i) for i in range(workers)]
    heapq.heapify(heap)
    next_job = 0
    while True:
        now, i = heapq.heappop(heap)
        w = fleet[i]
        if w.job is None and now >= w.until:  # claim the next job
            next_job += 1
            w.job, w.beats, w.until = next_job, 0, now + w.duration()
            run_id = f"job-{next_job}"
            lease = START + timedelta(seconds=now + 60)
            config = {"lr": rng.choice([1e-3, 3e-4]), "seed": next_job % 5, "model": "resnet"}
            js, rs = job_stream(next_job), run_stream(run_id)
            yield now, js, JobSubmitted(
                job_id=next_job, command_argv=["python", "train.py"], workdir="/srv/p",
                run_id=run_id, config=config, tags=["sweep"],
            )  # fmt: skip
            yield (
                now,
                js,
                JobClaimed(job_id=next_job, worker_id=w.id, attempt=1, lease_expires_at=lease),
            )
            yield now, js, JobStarted(job_id=next_job, worker_id=w.id, attempt=1, pid=4242)
            yield now, rs, RunStarted(
                run_id=run_id, run_dir=f"runs/{run_id}", job_id=next_job, config=config,
                tags=["sweep"], hostname=w.id,
            )  # fmt: skip
        elif w.job is not None and now >= w.until:  # the job ends
            job_id, run_id = w.job, f"job-{w.job}"
            outcome = rng.choices(["completed", "failed"], [9, 1])[0]
            code = 0 if outcome == "completed" else 1
            rs = run_stream(run_id)
            yield now, rs, RunSummaryUpdated(run_id=run_id, summary={"loss": rng.random()})
            yield now, rs, RunFinished(run_id=run_id, status=outcome, exit_code=code)  # type: ignore[arg-type]
            yield (
                now,
                job_stream(job_id),
                JobFinished(
                    job_id=job_id,
                    attempt=1,
                    outcome=outcome,
                    worker_id=w.id,
                    exit_code=code,  # type: ignore[arg-type]
                ),
            )
            w.job, w.until = None, now + w.gap()
        elif w.job is not None:  # renew the lease
            w.beats += 1
            lease = START + timedelta(seconds=now + 120)
            yield (
                now,
                job_stream(w.job),
                JobHeartbeat(job_id=w.job, worker_id=w.id, attempt=1, lease_expires_at=lease),
            )
            if w.beats % SUMMARY_EVERY == 0:
                summary = {"loss": rng.random(), "acc": rng.random(), "step": w.beats * 100}
                yield (
                    now,
                    run_stream(f"job-{w.job}"),
                    RunSummaryUpdated(run_id=f"job-{w.job}", summary=summary),
                )
        else:  # idle: alive
            yield now, worker_stream(w.id), WorkerSeen(worker_id=w.id)
        heapq.heappush(heap, (now + BEAT, i))


def append_until(store: SQLiteStore, events: Iterator[tuple[float, str, Event]], end: float,
                 pending: list[tuple[float, str, Event]]) -> int:  # fmt: skip
    """Write the events before ``end`` seconds into the log as ``append`` stores them,
    in big transactions; returns how many. ``pending``: the one read past ``end``."""
    conn = store._conn()
    insert = "INSERT INTO events (stream, type, recorded_us, data) VALUES (?, ?, ?, ?)"
    rows: list[tuple[str, str, int, bytes]] = []
    count = 0
    while True:
        item = pending.pop() if pending else next(events)
        if item[0] >= end:
            pending.append(item)
            break
        at, stream, event = item
        rows.append((stream, tag_of(event), to_us(START + timedelta(seconds=at)),
                     encode_for_append(event)))  # fmt: skip
        if len(rows) == 50_000:
            with conn:
                conn.executemany(insert, rows)
            count += len(rows)
            rows = []
    if rows:
        with conn:
            conn.executemany(insert, rows)
        count += len(rows)
    return count


def log_bytes(store: SQLiteStore) -> tuple[int, int]:
    """Bytes in use by the log (the events table and its index) and by everything else
    (the views and their indexes), from SQLite's page statistics (``dbstat``)."""
    rows = store._query("SELECT name, SUM(pgsize - unused) FROM dbstat GROUP BY name")
    log = sum(n for name, n in rows if name in ("events", "events_stream"))
    return int(log), int(sum(n for _, n in rows) - log)


def child(db: str, full: bool) -> None:
    """``rebuild()`` (or a full replay) in this fresh process: seconds, peak RSS, count."""
    store = SQLiteStore(db)
    store.checkpoint_every = 0
    started = time.perf_counter()
    count = store.rebuild(full=full)
    seconds = time.perf_counter() - started
    store.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "count": count}))


def measure(db: Path, full: bool) -> dict[str, float]:
    args = [sys.executable, __file__, "--child", str(db)] + (["--full"] if full else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    if out.stderr:
        print(out.stderr.strip(), file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workers", type=int, default=80)
    parser.add_argument("--older-than", type=float, default=7.0, help="days (policy)")
    parser.add_argument("--every-hours", type=float, default=24.0, help="retention schedule")
    parser.add_argument("--full", action="store_true", help="also time a full replay")
    parser.add_argument("--dir", default=None, help="keep the project here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Checkpoints must stay valid between the passes and the measuring children even where
    # the sources of events/projections change meanwhile (a working copy others edit): the
    # fingerprint only decides trust, not cost.
    checkpoints.fingerprint = lambda: "tools/bench/retention.py"  # type: ignore[method-assign]
    if args.child:
        child(args.child, args.full)
        return
    root = Path(args.dir or tempfile.mkdtemp(prefix="whirr-retention-"))
    root.mkdir(parents=True, exist_ok=True)
    db = root / "whirr.db"
    clock = [START]
    store = SQLiteStore(str(db), clock=lambda: clock[0])
    store.checkpoint_every = 0  # the schedule's rebuild takes one each pass
    events = simulate(args.workers)
    pending: list[tuple[float, str, Event]] = []
    step = args.every_hours * 3600
    total = 0
    history: list[tuple[float, int, int]] = []  # (day, log bytes, views bytes) per pass
    print(f"{args.workers} workers, {args.days} days, retention every {args.every_hours:g} h "
          f"of liveness older than {args.older_than:g} days; project in {root}")  # fmt: skip
    print(" day  appended   live rows  liveness   archived   log MB  views MB  rebuild  archive")
    end = step
    while end <= args.days * DAY + 1e-6:
        appended = append_until(store, events, end, pending)
        total += appended
        clock[0] = START + timedelta(seconds=end)
        started = time.perf_counter()
        store.rebuild()  # the views up to date (the pass's checkpoint is then this one)
        rebuilt = time.perf_counter() - started
        started = time.perf_counter()
        report = archive(store, older_than=timedelta(days=args.older_than), now=clock[0])
        archived_s = time.perf_counter() - started
        log, views = log_bytes(store)
        history.append((end / DAY, log, views))
        print(f"{end / DAY:4.1f}  {appended:8,}  {report.live:10,}  {report.live_liveness:8,}  "
              f"{report.archived:9,}  {log / 1e6:7.1f}  {views / 1e6:8.1f}  {rebuilt:6.2f}s  "
              f"{archived_s:6.2f}s", flush=True)  # fmt: skip
        end += step
    live, liveness = live_counts(store)
    log, views = log_bytes(store)
    file_size = db.stat().st_size
    # The worst moment for a rebuild: just before the next pass, a whole period of events
    # after the newest checkpoint.
    tail = append_until(store, events, end - 60, pending)
    store.close()
    days = history[-1][0]
    # Steady state: once the first archived day is out of the window (the second half).
    half = [h for h in history if h[0] >= max(args.older_than + 1, days / 2)]
    span = half[-1][0] - half[0][0] if len(half) > 1 else 0.0
    log_growth = (half[-1][1] - half[0][1]) / span if span else 0.0
    views_growth = (half[-1][2] - half[0][2]) / span if span else 0.0
    log_year = log + log_growth * (365 - days)
    views_year = views + views_growth * (365 - days)
    per_event = log / live if live else 0.0
    unretained = total / days * 365 * per_event
    archive_bytes = sum(s.path.stat().st_size for s in segments(str(db)))
    print()
    print(f"events written: {total:,} in {days:g} days ({total / days:,.0f}/day)")
    print(f"live log at the end: {live:,} events ({liveness:,} liveness): {log / 1e6:.1f} MB "
          f"(events + index), views {views / 1e6:.1f} MB; whirr.db file "
          f"{file_size / 1e6:.1f} MB (freed pages are reused)")  # fmt: skip
    print(f"steady-state growth: log {log_growth / 1e6:.2f} MB/day, views "
          f"{views_growth / 1e6:.2f} MB/day")  # fmt: skip
    print(f"extrapolated to 365 days: live log {log_year / 1e9:.2f} GB (target <= 2 GB); "
          f"with the views {(log_year + views_year) / 1e9:.2f} GB")  # fmt: skip
    print(f"the same year without retention: ~{unretained / 1e9:.1f} GB of log "
          f"({total / days * 365 / 1e6:.0f}M events at {per_event:.0f} B/event)")  # fmt: skip
    print(f"archive: {len(segments(str(db)))} segments, {archive_bytes / 1e6:.1f} MB "
          f"compressed ({archive_bytes / days * 365 / 1e9:.2f} GB/year)")  # fmt: skip
    rebuild = measure(db, full=False)
    print(f"rebuild just before the next pass (checkpoint + {tail:,} events of tail): "
          f"{rebuild['seconds']:.2f}s, peak RSS {rebuild['peak_mb']:.0f} MB, "
          f"{rebuild['count']:,} events replayed (target <= 10 s)")  # fmt: skip
    if args.full:
        full = measure(db, full=True)
        print(f"rebuild --full (live + archive): {full['seconds']:.2f}s, peak RSS "
              f"{full['peak_mb']:.0f} MB, {full['count']:,} events")  # fmt: skip


if __name__ == "__main__":
    main()
