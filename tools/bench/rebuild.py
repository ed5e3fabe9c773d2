"""Rebuild benchmark (issue 19): a large SQLite log, rebuilt from a checkpoint and in full.

    .venv/bin/python tools/bench/rebuild.py [--events 1000000] [--tail 100000]

Writes a SQLite project of ``--events`` events with a realistic mix (80 workers; per job
a submit, claim, start, run start, heartbeats, metric summaries, run and job ends; idle
workers' ``worker.seen`` in between), the first ``events - tail`` of them followed by a
checkpoint, the rest after it. Then measures, each in a fresh child process (time and
peak RSS from ``ru_maxrss``):

- read: the reference: every event read in batches, as a replay reads them (decoded);
- raw: every row of the log fetched, undecoded (SQLite's own floor);
- checkpoint: ``rebuild()``: the checkpoint ``--tail`` events behind the head + the tail;
- full: ``rebuild(full=True)``: a replay from position 0;
- in-memory: what rebuild did before checkpoints, for comparison: the whole log read,
  then folded in memory (the views not even written).

Each is reported in wall seconds (the targets) and CPU seconds of the child (steadier
on a loaded machine).

Targets at 1M events / 100k tail: checkpoint <= 3 s and <= 150 MB, full <= 10 s and
<= 300 MB. Ratios are against ``read`` of the same run (same machine, same load).
``--events 50000 --tail 5000`` is a quick check.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
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
from whirr.projections import fold  # noqa: E402
from whirr.store import checkpoints  # noqa: E402
from whirr.store.checkpoints import BATCH  # noqa: E402
from whirr.store.guard import encode_for_append  # noqa: E402
from whirr.store.sqlite import SQLiteStore  # noqa: E402
from whirr.store.sqlite.store import to_us  # noqa: E402

WORKERS = 80
KINDS = ["raw", "read", "checkpoint", "full"]
START = datetime(2030, 1, 1, tzinfo=UTC)


def workload(seed: int = 19) -> object:
    """An endless, realistic stream of (stream, event, at) triples."""
    rng = random.Random(seed)
    at = START
    for w in range(WORKERS):
        wid = f"gpu-{w:02d}"
        yield worker_stream(wid), WorkerRegistered(worker_id=wid, hostname=f"node{w // 8}"), at
    job_id = 0
    while True:
        job_id += 1
        wid = f"gpu-{rng.randrange(WORKERS):02d}"
        run_id = f"job-{job_id}"
        stream, rstream = job_stream(job_id), run_stream(run_id)
        lease = at + timedelta(minutes=1)
        config = {"lr": rng.choice([1e-3, 3e-4, 1e-4]), "seed": job_id % 5, "model": "resnet"}
        tags = rng.sample(["baseline", "sweep", "ablation", "long"], k=rng.randrange(3))
        life: list[tuple[str, Event]] = [
            (
                stream,
                JobSubmitted(
                    job_id=job_id,
                    command_argv=["python", "train.py"],
                    workdir="/srv/proj",
                    run_id=run_id,
                    config=config,
                    tags=tags,
                ),
            ),
            (stream, JobClaimed(job_id=job_id, worker_id=wid, attempt=1, lease_expires_at=lease)),
            (
                stream,
                JobStarted(job_id=job_id, worker_id=wid, attempt=1, pid=1000 + job_id % 30000),
            ),
            (
                rstream,
                RunStarted(
                    run_id=run_id,
                    run_dir=f".whirr/runs/{run_id}",
                    job_id=job_id,
                    config=config,
                    tags=tags,
                    hostname="node",
                ),
            ),
        ]
        for beat in range(rng.randrange(12)):
            life.append(
                (
                    stream,
                    JobHeartbeat(
                        job_id=job_id,
                        worker_id=wid,
                        attempt=1,
                        lease_expires_at=lease + timedelta(seconds=20 * beat),
                    ),
                )
            )
            if beat % 4 == 3:
                summary = {"loss": rng.random(), "acc": rng.random(), "step": beat * 100}
                life.append((rstream, RunSummaryUpdated(run_id=run_id, summary=summary)))
        life.append((rstream, RunSummaryUpdated(run_id=run_id, summary={"loss": rng.random()})))
        outcome = rng.choices(["completed", "failed"], [9, 1])[0]
        life.append(
            (
                rstream,
                RunFinished(
                    run_id=run_id, status=outcome, exit_code=0 if outcome == "completed" else 1
                ),
            )
        )
        life.append(
            (
                stream,
                JobFinished(
                    job_id=job_id,
                    attempt=1,
                    outcome=outcome,
                    worker_id=wid,
                    exit_code=0 if outcome == "completed" else 1,
                ),
            )
        )
        for pending in life:
            # Idle workers' liveness between a job's events: ~30% of the log.
            while rng.random() < 0.3:
                idle = f"gpu-{rng.randrange(WORKERS):02d}"
                yield worker_stream(idle), WorkerSeen(worker_id=idle), at
                at += timedelta(milliseconds=rng.randrange(1, 500))
            yield pending[0], pending[1], at
            at += timedelta(milliseconds=rng.randrange(1, 2000))


def append_raw(store: SQLiteStore, events: object, count: int) -> None:
    """``count`` events of the workload into the log as ``append`` would store them, in
    big transactions (the views are left to the rebuilds below)."""
    conn = store._conn()
    insert = "INSERT INTO events (stream, type, recorded_us, data) VALUES (?, ?, ?, ?)"
    rows = []
    for _ in range(count):
        stream, event, at = next(events)  # type: ignore[call-overload]
        rows.append((stream, tag_of(event), to_us(at), encode_for_append(event)))
        if len(rows) == 50_000:
            with conn:
                conn.executemany(insert, rows)
            rows = []
    if rows:
        with conn:
            conn.executemany(insert, rows)


def generate(path: Path, total: int, tail: int) -> None:
    store = SQLiteStore(str(path))
    store.checkpoint_every = 0
    events = iter(workload())
    append_raw(store, events, total - tail)
    started = time.perf_counter()
    store.checkpoint()  # itself a replay of events 1..total-tail, into a checkpoint file
    print(f"  checkpoint at {store.head():,} taken in {time.perf_counter() - started:.1f}s")
    append_raw(store, events, tail)
    store.close()


def child(kind: str, db: str) -> None:
    """One measurement, in this (fresh) process: prints seconds, peak RSS and a count."""
    store = SQLiteStore(db)
    store.checkpoint_every = 0
    started, cpu = time.perf_counter(), time.process_time()
    if kind == "raw":
        count = sum(1 for _ in store._conn().execute("SELECT position, data FROM events"))
    elif kind == "read":
        count, after = 0, 0
        while batch := store.read(after=after, limit=BATCH):
            count += len(batch)
            after = batch[-1].position
    elif kind == "in-memory":
        records = store.read()  # what rebuild did before checkpoints: the whole log,
        count = len(records)  # and every view, in memory (the rows not even written)
        fold(records)
    else:
        count = store.rebuild(full=kind == "full")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"kind": kind, "seconds": seconds, "cpu": cpu, "peak_mb": peak_mb, "count": count}
    print(json.dumps(out))


def measure(kind: str, db: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--db", str(db)],
        check=True,
        capture_output=True,
        text=True,
    )
    if out.stderr:  # a checkpoint ignored (and why) says so here
        print(out.stderr.strip(), file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    # The checkpoint must stay valid between generating and measuring, even where the
    # sources of events/projections change meanwhile (a working copy others edit): the
    # fingerprint only decides trust, not cost.
    checkpoints.fingerprint = lambda: "tools/bench/rebuild.py"  # type: ignore[method-assign]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--tail", type=int, default=100_000)
    parser.add_argument("--child", choices=[*KINDS, "in-memory", "generate"])
    parser.add_argument(
        "--in-memory", action="store_true", help="also measure the pre-checkpoint rebuild"
    )
    parser.add_argument("--db", help="(child) the database; (parent) reuse/keep one here")
    args = parser.parse_args()
    if args.child == "generate":
        generate(Path(args.db), args.events, args.tail)
        return
    if args.child:
        child(args.child, args.db)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "whirr.db"
        if not db.exists():
            print(f"generating {args.events:,} events ({args.tail:,} after the checkpoint)")
            started = time.perf_counter()
            # In a child too: Linux hands a parent's peak RSS (ru_maxrss) down to the
            # children it forks, so this process must stay small for theirs to be true.
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "generate",
                    "--db",
                    str(db),
                    "--events",
                    str(args.events),
                    "--tail",
                    str(args.tail),
                ],
                check=True,
            )
            print(f"  generated in {time.perf_counter() - started:.1f}s")
        size = sum(p.stat().st_size for p in db.parent.glob(f"{db.name}*"))
        print(f"  log {size / 2**20:.0f} MB on disk (the database and its WAL)")
        # A kept database: back to one checkpoint ``--tail`` events behind the head.
        for old in (db.parent / "checkpoints").glob("views-*.db"):
            if int(old.stem.removeprefix("views-")) > args.events - args.tail:
                old.unlink()
        kinds = [*KINDS, "in-memory"] if args.in_memory else KINDS
        results = {kind: measure(kind, db) for kind in kinds}
        reference = results["read"]["seconds"]
        # CPU seconds too: on a loaded machine they vary less than the wall time.
        print(f"{'':12}{'events':>10}{'seconds':>10}{'cpu s':>8}{'peak MB':>10}{'x read':>9}")
        for kind, r in results.items():
            print(
                f"{kind:12}{r['count']:>10,}{r['seconds']:>10.2f}{r['cpu']:>8.2f}"
                f"{r['peak_mb']:>10.0f}{r['seconds'] / reference:>9.2f}"
            )
        targets = {"checkpoint": (3.0, 150.0), "full": (10.0, 300.0)}
        for kind, (seconds, mb) in targets.items():
            r = results[kind]
            ok = r["seconds"] <= seconds and r["peak_mb"] <= mb
            print(f"target {kind}: <= {seconds} s, <= {mb:.0f} MB: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
