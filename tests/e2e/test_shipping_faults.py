"""End to end: shipping run files survives what networks and machines do (issue 16).

The server's data dir is not the workers'; the Python and the Rust worker reach the
server through a ``PauseProxy`` (a TCP proxy the test pauses, throttles and re-points):

- a 30 s partition mid-run (workers on ``--lease-seconds 120``, so nobody fences): after
  it, the server's copy of every stream equals the worker's, byte for byte;
- the server SIGKILLed mid-upload and started again on its data dir;
- both workers SIGKILLed mid-upload, then new workers on the same data dirs ship the rest;
- a stale attempt's upload is refused with 409 (the HTTP route driven directly, with a
  worker-scoped token), offsets are idempotent and a gap is refused.

"Mid-upload" is made observable, not hoped for: the proxy throttles what workers send,
and the test acts once the server holds some but not all of a stream. Every wait has a
deadline. SQLite only (the PostgreSQL store is covered by ``test_no_shared_fs``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pause_proxy import PauseProxy
from server_process import WHIRR, ServerProcess, stop_process, wait_for
from shipping_env import STREAMS, ServerCopy, Workers, hide, sha

from whirr.client import WhirrClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the workers are Linux-only")

KINDS = ("python", "rust")
#: Long: a 30 s partition must not end a job by self-fencing.
LEASE = 120
PARTITION_S = 30

# ``stream``: a row every 5 ms and a line every 10 rows until ``go`` (at most ~120 s).
# ``burst``: ~8 MB of output and 20,000 rows at once, then ``written``; with ``wait``
# it then waits for ``go`` before it ends, else it ends at once.
JOB = """\
import os, pathlib, sys, time, whirr
mode, wait = sys.argv[1], "wait" in sys.argv[2:]
with whirr.init(name=mode, system_metrics_interval=0.2, capture_git=False,
                capture_pip=False) as run:
    if mode == "stream":
        i = 0
        deadline = time.monotonic() + 120
        while not os.path.exists("go") and time.monotonic() < deadline:
            run.log({"loss": 1.0 / (i + 1)}, step=i)
            if i % 10 == 0:
                print(f"row {i}", flush=True)
            i += 1
            time.sleep(0.005)
    else:
        for block in range(8):
            os.write(1, b"".join(b"burst %d line %06d\\n" % (block, n) for n in range(50_000)))
        for i in range(20_000):
            run.log({"loss": 1.0 / (i + 1), "acc": i / 20_000}, step=i)
        pathlib.Path("written").touch()
        for _ in range(2400 if wait else 0):  # at most ~120 s
            if os.path.exists("go"):
                break
            time.sleep(0.05)
print("done", flush=True)
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "server")
    yield proc
    proc.stop()


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[PauseProxy]:
    p = PauseProxy(server.port)
    yield p
    p.close()


@pytest.fixture
def workers(server: ServerProcess) -> Iterator[Workers]:
    w = Workers(server)
    yield w
    w.close()


class Scene:
    """One job per worker kind, each worker on a data dir of its own behind the proxy."""

    def __init__(self, root: Path, server: ServerProcess, proxy: PauseProxy, workers: Workers):
        self.root, self.server, self.proxy, self.workers = root, server, proxy, workers
        self.dirs = {kind: root / f"{kind}-data" for kind in KINDS}
        self.jobs: dict[str, int] = {}
        self.runs: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.workdirs: dict[str, Path] = {}

    def start_workers(self) -> None:
        for kind in KINDS:
            self.procs[kind] = self.workers.start(
                kind, self.dirs[kind], url=self.proxy.url, lease=LEASE, worker_id=f"{kind}-box"
            )

    def submit(self, *args: str) -> None:
        """Two jobs; each worker runs one at a time, so each claims one of them."""
        with WhirrClient(self.server.url, token=self.server.token) as api:
            ids = []
            for n in range(len(KINDS)):
                work = self.root / "work" / f"job-{n}"
                work.mkdir(parents=True)
                (work / "job.py").write_text(JOB)
                ids.append(api.submit([sys.executable, "job.py", *args], str(work)).job_id)
            for job_id in ids:
                job = wait_for(lambda job_id=job_id: running(api, job_id), timeout=60)
                kind = str(job.worker_id).removesuffix("-box")
                assert kind in KINDS and kind not in self.jobs, (job, self.jobs)
                self.jobs[kind] = job_id
                self.runs[kind] = job.run_id
                self.workdirs[kind] = Path(job.workdir)

    def work(self, kind: str) -> Path:
        return self.workdirs[kind]

    def local(self, kind: str, name: str) -> Path:
        return self.dirs[kind] / "runs" / self.runs[kind] / name

    def go(self) -> None:
        for kind in KINDS:
            (self.work(kind) / "go").touch()

    def wait_completed(self, timeout: float = 90) -> None:
        with WhirrClient(self.server.url, token=self.server.token) as api:
            for job_id in self.jobs.values():
                ended = wait_for(
                    lambda job_id=job_id: (
                        api.get_job(job_id).finished_at is not None and api.get_job(job_id)
                    ),
                    timeout=timeout,
                    interval=0.2,
                )
                assert ended.status == "completed", (ended, self.workers.output())

    def assert_same_bytes(self, copy: ServerCopy) -> None:
        """The server's copy of each stream is the worker's, byte for byte (read once the
        workers stopped and their data dirs moved away)."""
        self.workers.stop_all()
        self.dirs = {kind: hide(path) for kind, path in self.dirs.items()}
        for kind in KINDS:
            for name in STREAMS:
                mine = self.local(kind, name).read_bytes()
                theirs = copy.stream(self.runs[kind], self.jobs[kind], name)
                assert len(theirs) == len(mine) and sha(theirs) == sha(mine), (
                    kind,
                    name,
                    len(theirs),
                    len(mine),
                    first_difference(mine, theirs),
                )

    def wait_mid_upload(self, copy: ServerCopy) -> None:
        """Until each job wrote its burst and the server holds part of its output.log."""

        def mid(kind: str) -> bool:
            if not (self.work(kind) / "written").exists():
                return False
            local = self.local(kind, "output.log").stat().st_size
            return 0 < copy.size(self.runs[kind], "output.log") < local

        for kind in KINDS:
            wait_for(lambda kind=kind: mid(kind), timeout=60, interval=0.01)


def running(api: WhirrClient, job_id: int) -> object:
    job = api.get_job(job_id)
    return job if job.status == "running" else None


def first_difference(a: bytes, b: bytes) -> tuple[int, bytes, bytes]:
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return n, a[max(0, n - 40) : n + 40], b[max(0, n - 40) : n + 40]


def test_a_30_second_partition_loses_and_doubles_nothing(
    tmp_path: Path, server: ServerProcess, proxy: PauseProxy, workers: Workers
) -> None:
    scene = Scene(tmp_path, server, proxy, workers)
    scene.start_workers()
    scene.submit("stream")
    copy = ServerCopy(server)
    try:
        # Shipping is live before the partition...
        for kind in KINDS:
            wait_for(lambda kind=kind: copy.size(scene.runs[kind], "metrics.jsonl") > 0, 30)
        proxy.pause()
        time.sleep(PARTITION_S)  # the partition itself: the jobs go on logging meanwhile
        before = {}
        with WhirrClient(server.url, token=server.token) as api:
            for kind in KINDS:
                assert api.get_job(scene.jobs[kind]).status == "running"
                before[kind] = copy.size(scene.runs[kind], "metrics.jsonl")
                assert before[kind] < scene.local(kind, "metrics.jsonl").stat().st_size
        proxy.resume()
        # ... and resumes after it, while the jobs still run.
        for kind in KINDS:
            wait_for(
                lambda kind=kind: copy.size(scene.runs[kind], "metrics.jsonl") > before[kind], 30
            )
        scene.go()
        scene.wait_completed()
        scene.assert_same_bytes(copy)
    finally:
        copy.close()


def test_the_server_killed_mid_upload_and_started_again_loses_and_doubles_nothing(
    tmp_path: Path, server: ServerProcess, proxy: PauseProxy, workers: Workers
) -> None:
    proxy.throttle(4 << 20)
    scene = Scene(tmp_path, server, proxy, workers)
    scene.start_workers()
    scene.submit("burst", "wait")
    copy = ServerCopy(server)
    try:
        scene.wait_mid_upload(copy)
    finally:
        copy.close()
    server.proc.kill()  # SIGKILL: no chance to finish a write
    server.proc.wait()
    again = ServerProcess(server.root)  # the same data dir and token, a new port
    try:
        proxy.point_at(again.port)
        proxy.throttle(None)
        scene.server = again
        scene.go()
        scene.wait_completed()
        copy = ServerCopy(again)
        try:
            scene.assert_same_bytes(copy)
        finally:
            copy.close()
    finally:
        again.stop()


def test_workers_killed_mid_upload_new_workers_on_their_data_dirs_ship_the_rest(
    tmp_path: Path, server: ServerProcess, proxy: PauseProxy, workers: Workers
) -> None:
    proxy.throttle(4 << 20)
    scene = Scene(tmp_path, server, proxy, workers)
    scene.start_workers()
    scene.submit("burst")  # the jobs end at once: their workers are flushing when killed
    copy = ServerCopy(server)
    try:
        scene.wait_mid_upload(copy)
        for kind in KINDS:
            scene.procs[kind].kill()  # SIGKILL: the shipper dies mid-request
            scene.procs[kind].wait()
        proxy.throttle(None)
        for kind in KINDS:
            workers.start(
                kind, scene.dirs[kind], url=proxy.url, lease=LEASE, worker_id=f"{kind}-again"
            )

        def shipped(kind: str) -> bool:
            run_id = scene.runs[kind]
            return all(
                copy.size(run_id, name) == scene.local(kind, name).stat().st_size
                for name in STREAMS
            )

        for kind in KINDS:
            wait_for(lambda kind=kind: shipped(kind), timeout=60, interval=0.2)
        scene.assert_same_bytes(copy)
    finally:
        copy.close()


def worker_token(data_dir: Path) -> str:
    """A worker-scoped token made with ``whirr token create`` (before the server reads
    its tokens)."""
    made = subprocess.run(
        [*WHIRR, "token", "create", "box", "--scope", "worker", "-d", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_a_stale_attempts_upload_is_refused_and_offsets_are_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "server"
    token = worker_token(root / "data")
    server = ServerProcess(root)
    try:
        with WhirrClient(server.url, token=server.token) as admin:
            job = admin.submit(["true"], "/", retries=1)
        headers = {"Authorization": f"Bearer {token}"}
        with (
            httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=30) as http,
            WhirrClient(server.url, token=token) as box,
        ):
            box.register_worker("box", "far-away")

            def claim_and_start() -> int:
                claimed = wait_for(lambda: box.claim("box"), timeout=30, interval=0.2)
                assert claimed.id == job.job_id
                started = http.post(
                    f"/jobs/{job.job_id}/started",
                    json={
                        "worker_id": "box",
                        "attempt": claimed.attempt,
                        "pid": 4242,
                        "files": "shipped",
                    },
                )
                assert started.status_code == 200, started.text
                return claimed.attempt

            def put(name: str, attempt: int, offset: int, data: bytes) -> httpx.Response:
                return http.put(
                    f"/runs/{job.run_id}/files/{name}",
                    params={"attempt": attempt, "offset": offset},
                    content=data,
                    headers={"Content-Type": "application/octet-stream"},
                )

            first = claim_and_start()
            assert first == 1
            ok = put("output.log", 1, 0, b"one\n")
            assert ok.status_code == 200 and ok.json()["size"] == 4, ok.text
            again = put("output.log", 1, 0, b"one\ntwo\n")  # a retry that carries more
            assert again.status_code == 200 and again.json()["size"] == 8, again.text
            gap = put("output.log", 1, 20, b"lost?\n")
            assert gap.status_code == 409, gap.text
            assert gap.json()["reason"] == "offset_gap" and gap.json()["size"] == 8
            assert put("../../etc/passwd", 1, 0, b"x").status_code in (404, 422)
            assert put("notes.txt", 1, 0, b"x").status_code == 422

            box.complete(job.job_id, "box", first, exit_code=1)  # failed: retried
            second = claim_and_start()
            assert second == 2
            stale = put("output.log", 1, 8, b"late\n")
            assert stale.status_code == 409, stale.text
            assert stale.json()["reason"] == "stale_attempt" and stale.json()["attempt"] == 2
            fresh = put("output.log", 2, 0, b"second\n")
            assert fresh.status_code == 200 and fresh.json()["size"] == 7, fresh.text
            final = http.post(
                f"/runs/{job.run_id}/files/final",
                params={"attempt": 2},
                json={"files": {"output.log": 7}},
            )
            assert final.status_code == 200, final.text
            listed = http.get(f"/runs/{job.run_id}/files").json()
            assert listed["attempt"] == 2 and listed["mode"] == "shipped"
            assert listed["files"]["output.log"]["attempt_size"] == 7
            assert listed["files"]["output.log"]["state"] == "complete", listed
            # The attempts never mix: attempt 1's bytes, then attempt 2's, nothing else.
            logs = http.get(f"/jobs/{job.job_id}/logs")
            # (attempt 2 appended after attempt 1's bytes, or kept apart and shown alone)
            assert logs.status_code == 200, logs.text
            assert logs.content in (b"one\ntwo\nsecond\n", b"second\n"), logs.content
    finally:
        stop_process(server.proc)
