"""End to end: a hiccup of the server or its database does not kill work (issue 22).

Real ``whirr server`` processes, real workers (``whirr worker --server`` and the Rust
``whirr-worker``), real jobs. A server answering 503 for a while (``HiccupProxy`` in
front of it, as during a database restart) or a real PostgreSQL restart (a private
throwaway cluster, ``pg_ctl stop/start -m immediate``) shorter than the lease: the worker
stays up, the job keeps running, its end is reported once the server answers again, and
it finishes exactly once, as attempt 1. A request the server holds open does not hold a
stopping worker either.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hiccup_proxy import HiccupProxy
from server_process import (
    ServerProcess,
    free_port,
    rust_worker_binary,
    stop_process,
    wait_for,
)
from worker_processes import WorkerProcs, worker_command

from whirr.client import ServerError, WhirrClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the workers are Linux-only")

#: Long enough that a busy machine (CI) notices a failure and recovers well inside it.
LEASE = 30
#: A job that runs until the test creates ``go`` in its workdir (at most ~60 s).
WAIT_FOR_GO = "for i in $(seq 1200); do [ -e go ] && exit 0; sleep 0.05; done; exit 3"

StartWorker = Callable[..., subprocess.Popen[bytes]]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def rust_binary() -> Path:
    return rust_worker_binary()


@pytest.fixture(params=["python", "rust"])
def start_worker(request: pytest.FixtureRequest) -> Iterator[StartWorker]:
    """Starts a worker of the parametrized kind against ``url``; output in the logs dir."""
    kind = str(request.param)
    binary = request.getfixturevalue("rust_binary") if kind == "rust" else None
    procs = WorkerProcs()

    def start(server: ServerProcess, url: str, *extra: str) -> subprocess.Popen[bytes]:
        # A short lease and fast beats.
        command = worker_command(kind, url, server.data_dir, lease=LEASE, binary=binary)
        env = {**server.env, "WHIRR_SERVER_URL": url}
        return procs.spawn([*command, *extra], env, server.logs_dir / f"{kind}-worker.log")

    yield start
    procs.kill_all()


def worker_log(server: ServerProcess) -> str:
    return "\n".join(p.read_text(errors="replace") for p in server.logs_dir.glob("*-worker.log"))


def job_history(server: ServerProcess, job_id: int) -> list[tuple[str, int]]:
    """(type, attempt) of every claim, requeue and end of the job, in order."""
    kinds = ["job.claimed", "job.requeued", "job.finished", "job.retry_scheduled"]
    with WhirrClient(server.url, token=server.token) as client:
        events = client.events(follow=False, types=kinds)
        return [
            (e.type, int(e.event.get("attempt", 0)))
            for e in events
            if e.event.get("job_id") == job_id
        ]


def running(server: ServerProcess, job_id: int) -> bool:
    with WhirrClient(server.url, token=server.token) as client:
        return client.get_job(job_id).status == "running"


def store_answers(server: ServerProcess) -> bool:
    """Whether the server reads its store again (no 503 ``store unavailable``)."""
    try:
        with WhirrClient(server.url, token=server.token) as client:
            client.status()
    except ServerError:
        return False
    return True


def assert_finished_once(
    server: ServerProcess, job_id: int, worker: subprocess.Popen[bytes]
) -> None:
    with WhirrClient(server.url, token=server.token) as client:
        job = client.wait_for_job(job_id, timeout=LEASE + 20)
    history = job_history(server, job_id)
    context = f"{history}\n--- worker ---\n{worker_log(server)}"
    assert job.status == "completed", context
    assert job.attempt == 1, context
    assert history == [("job.claimed", 1), ("job.finished", 1)], context
    assert worker.poll() is None, f"the worker exited:\n{context}"


def stop_worker(proc: subprocess.Popen[bytes], server: ServerProcess) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the worker did not drain:\n{worker_log(server)}")
    assert code == 0, worker_log(server)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "srv")
    yield proc
    proc.stop()


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[HiccupProxy]:
    p = HiccupProxy(server.url)
    yield p
    p.close()


def submit_waiting_job(server: ServerProcess, workdir: Path) -> int:
    workdir.mkdir(exist_ok=True)
    with WhirrClient(server.url, token=server.token) as client:
        return client.submit(["sh", "-c", WAIT_FOR_GO], str(workdir)).job_id


def test_a_503_spell_shorter_than_the_lease_keeps_the_job(
    server: ServerProcess, proxy: HiccupProxy, start_worker: StartWorker, tmp_path: Path
) -> None:
    workdir = tmp_path / "wd"
    job_id = submit_waiting_job(server, workdir)
    worker = start_worker(server, proxy.url)
    wait_for(lambda: running(server, job_id), timeout=30)
    wait_for(lambda: proxy.count("/heartbeat", 200) >= 1, timeout=30)

    proxy.fail(503)
    # Renewals keep being tried (and refused) while the job keeps running...
    wait_for(lambda: proxy.count("/heartbeat", 503) >= 3, timeout=LEASE / 2)
    # ...and it ends during the spell: its report is refused too.
    (workdir / "go").touch()
    wait_for(
        lambda: proxy.count("/complete", 503) + proxy.count("/fail", 503) >= 1, timeout=LEASE / 2
    )
    assert worker.poll() is None, worker_log(server)
    assert running(server, job_id)

    proxy.heal()
    assert_finished_once(server, job_id, worker)
    stop_worker(worker, server)


def test_a_worker_started_during_a_503_spell_waits_for_the_server(
    server: ServerProcess, proxy: HiccupProxy, start_worker: StartWorker, tmp_path: Path
) -> None:
    proxy.fail(503)
    worker = start_worker(server, proxy.url)
    wait_for(lambda: proxy.count("/workers/register", 503) >= 2, timeout=LEASE)
    assert worker.poll() is None, worker_log(server)
    proxy.heal()
    with WhirrClient(server.url, token=server.token) as client:
        job = client.submit_and_wait(["true"], str(tmp_path), timeout=30)
    assert job.status == "completed", worker_log(server)
    stop_worker(worker, server)


def test_a_worker_stopped_before_it_could_register_exits_cleanly(
    server: ServerProcess, proxy: HiccupProxy, start_worker: StartWorker
) -> None:
    proxy.fail(503)
    worker = start_worker(server, proxy.url)
    wait_for(lambda: proxy.count("/workers/register", 503) >= 1, timeout=LEASE)
    stop_worker(worker, server)
    assert proxy.count("/workers/unregister") == 0, worker_log(server)
    assert "unregistered" not in worker_log(server), worker_log(server)


def test_a_claim_held_open_does_not_hold_a_stopping_worker(
    server: ServerProcess, proxy: HiccupProxy, start_worker: StartWorker
) -> None:
    proxy.hold("/jobs/claim")
    worker = start_worker(server, proxy.url)
    wait_for(lambda: proxy.holding("/jobs/claim") >= 1, timeout=30)
    worker.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    try:
        code = worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit 10 s after SIGTERM:\n{worker_log(server)}")
    took = time.monotonic() - signalled
    assert code == 0, worker_log(server)
    assert took < 2.0, f"exited {took:.1f}s after SIGTERM"


# The Python worker sends reports on its loop's thread: a held report waits out the
# client's timeout (30 s) before the loop sees a signal.
@pytest.mark.parametrize("start_worker", ["rust"], indirect=True)
def test_a_report_held_open_ends_on_a_second_signal(
    server: ServerProcess, proxy: HiccupProxy, start_worker: StartWorker, tmp_path: Path
) -> None:
    proxy.hold("/complete")
    workdir = tmp_path / "wd"
    workdir.mkdir()
    with WhirrClient(server.url, token=server.token) as client:
        client.submit(["true"], str(workdir))
    worker = start_worker(server, proxy.url)
    wait_for(lambda: proxy.holding("/complete") >= 1, timeout=30)
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "drain" in worker_log(server).lower(), timeout=10)
    worker.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit 15 s after the second SIGTERM:\n{worker_log(server)}")
    took = time.monotonic() - signalled
    assert took < 3.5, f"exited {took:.1f}s after the second SIGTERM:\n{worker_log(server)}"


# -- a real PostgreSQL restart ---------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(versions[-1]) if versions else None


class PrivateCluster:
    """A throwaway PostgreSQL cluster on a free loopback port (trust auth), run as the
    ``postgres`` user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        as_root = os.geteuid() == 0
        missing = []
        if not initdb or not self.pg_ctl:
            missing.append("the PostgreSQL server binaries (initdb, pg_ctl)")
        if as_root and not shutil.which("runuser"):
            missing.append("runuser")
        if as_root:
            try:
                import pwd

                self._owner = pwd.getpwnam("postgres")
            except KeyError:
                missing.append("a `postgres` user")
        if missing:
            message = f"a private PostgreSQL cluster needs {', '.join(missing)}"
            if in_ci():
                pytest.fail(f"CI must run the PostgreSQL restart test: {message}", pytrace=False)
            pytest.skip(message)
        self._prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        self.root = Path(tempfile.mkdtemp(prefix="whirr-pg-"))
        if as_root:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run(initdb or "", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")
        self.start()

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(
            [*self._prefix, *cmd], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c full_page_writes=off"
        )
        log = str(self.root / "postgres.log")
        self._run(self.pg_ctl or "", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run(self.pg_ctl or "", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.mark.postgres
def test_a_postgres_restart_keeps_workers_and_their_jobs(
    private_postgres: PrivateCluster, start_worker: StartWorker, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path / "srv", database_url=private_postgres.url)
    try:
        workdir = tmp_path / "wd"
        job_id = submit_waiting_job(server, workdir)
        worker = start_worker(server, server.url)
        wait_for(lambda: running(server, job_id), timeout=30)
        beats = worker_log(server).count("heartbeat failed") + worker_log(server).count(
            "renewal failed"
        )

        private_postgres.stop("immediate")  # a crash: no shutdown checkpoint
        # The worker sees the server fail on its next renewal, and keeps the job (one
        # failure is enough to know; two could take most of the wait on a busy machine).
        wait_for(
            lambda: (
                worker_log(server).count("heartbeat failed")
                + worker_log(server).count("renewal failed")
                >= beats + 1
            ),
            timeout=LEASE / 2,
        )
        (workdir / "go").touch()  # it ends while the database is down
        wait_for(
            lambda: (
                "could not report its end" in worker_log(server)
                or "complete failed" in worker_log(server)
            ),
            timeout=LEASE / 2,
        )
        assert worker.poll() is None, worker_log(server)
        private_postgres.start()  # crash recovery, then the worker's report lands
        # The server answers 503 until its pool has a connection again (it waits 3 s for
        # one per request): what we ask next must come after that, as the worker's does.
        wait_for(lambda: store_answers(server), timeout=30)

        assert_finished_once(server, job_id, worker)
        stop_worker(worker, server)
    finally:
        stop_process(server.proc)
