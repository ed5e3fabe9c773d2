"""A writer process for the store contract suite (run as a script, one per process).

    python store_process.py URL MODE COUNT GO_FILE

Opens its own store on URL, creates GO_FILE.ready.<pid>, waits until GO_FILE exists (so
several processes start writing together), then:

- ``jobs``: COUNT times, submit a job and claim one; then claim until the queue is
  empty. Prints ``{"submitted": [...], "claimed": [...]}`` as JSON.
- ``append``: appends COUNT single-event batches. Prints ``{"positions": [...]}``.
"""

from __future__ import annotations

import json
import os
import sys
import time

from whirr.events import Pending, WorkerSeen, worker_stream
from whirr.services import Jobs
from whirr.store import open_store

LEASE_SECONDS = 600.0


def main(url: str, mode: str, count: int, go_file: str) -> dict[str, list[int]]:
    """Run one writer; returns what it did."""
    store = open_store(url)
    try:
        with open(f"{go_file}.ready.{os.getpid()}", "w"):
            pass
        deadline = time.monotonic() + 60
        while not os.path.exists(go_file):
            if time.monotonic() > deadline:
                raise SystemExit("the go file never appeared")
            time.sleep(0.005)
        worker = f"proc-{os.getpid()}"
        if mode == "jobs":
            jobs = Jobs(store)
            submitted: list[int] = []
            claimed: list[int] = []
            for _ in range(count):
                submitted.append(jobs.submit(["true"], "/", check=False).id)
                job = jobs.claim(worker, LEASE_SECONDS)
                if job is not None:
                    claimed.append(job.id)
            while (job := jobs.claim(worker, LEASE_SECONDS)) is not None:
                claimed.append(job.id)
            return {"submitted": submitted, "claimed": claimed}
        if mode == "append":
            event = Pending(worker_stream(worker), WorkerSeen(worker_id=worker))
            return {"positions": [store.append([event]) for _ in range(count)]}
        raise SystemExit(f"unknown mode {mode!r}")
    finally:
        store.close()


if __name__ == "__main__":
    url_arg, mode_arg, count_arg, go_arg = sys.argv[1:5]
    print(json.dumps(main(url_arg, mode_arg, int(count_arg), go_arg)))
