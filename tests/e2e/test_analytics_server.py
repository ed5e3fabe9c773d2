"""``compare``, ``export``, ``sql``, ``runs --where``, ``events`` and ``doctor`` answer the
same against a ``whirr server`` as in a project (issue 15 item 2), through the real CLI.

The parity tests give a project and a server the very same runs: the same events (same
times) recorded into the project's log and into the server's data dir before it starts,
and the same run files, so outputs must be equal once the run directories' paths (which
differ by design) are normalised. The server's run files reach the CLI through
``GET /runs/{id}/raw/{file}`` into a cache (``WHIRR_CACHE_DIR``), so a second command and
a grown file are covered too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from server_process import WHIRR, ServerProcess

from whirr.client import WhirrClient

# The run builder is shared with the analytics unit tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_analytics_support import Builder, metric_lines, new_project


class DataDir:
    """A server's data dir seen as the project-shaped thing ``Builder`` writes to."""

    def __init__(self, data: Path) -> None:
        self.db_path = data / "whirr.db"
        self.runs_dir = data / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id


def record(builder: Builder) -> None:
    """Runs of a small sweep, one long enough for the Parquet cache, one still running."""
    curve = [{"step": i, "loss": 1 / (i + 1), "acc": i / 2000} for i in range(2000)]
    builder.run(
        "job-1",
        name="lr-0.1",
        config={"lr": 0.1, "bs": 32, "opt": "sgd"},
        tags=["sweep"],
        summary={"best_loss": 0.5},
        duration=90.5,
        job_id=1,
        metrics=curve,
        system=[{"cpu_percent": 10.0, "memory_used_gb": 1.5}],
    )
    builder.run(
        "job-2",
        name="lr-0.01",
        config={"lr": 0.01, "bs": 32, "opt": "sgd"},
        tags=["sweep"],
        summary={"best_loss": 0.25},
        duration=120.25,
        job_id=2,
        metrics=[
            {"step": 0, "loss": 0.9, "acc": 0.2},
            {"step": 1, "loss": 0.25, "acc": 0.75},
            {"step": 2, "loss": 0.375, "acc": 0.625},
        ],
    )
    builder.run(
        "job-3",
        name="lr-0.001",
        config={"lr": 0.001, "bs": 64, "opt": "adam"},
        tags=["sweep"],
        status="failed",
        duration=30.0,
        job_id=3,
        metrics=[{"step": 0, "loss": 2.0}, {"step": 1, "loss": 1.5, "val_loss": 1.25}],
    )
    builder.run(
        "live-run",
        name="quick",
        config={"lr": 0.05},
        status="running",
        metrics=[{"step": 0, "loss": 0.8}, {"step": 1, "loss": 0.6}],
        tail=b'{"_idx":2,"_timest',  # a line still being written
    )
    builder.run("empty", name="nothing", duration=1.0)


def environment(server: ServerProcess | None, cache: Path) -> dict[str, str]:
    """This process's environment for the CLI: pointed at ``server`` (None: at nothing, so
    the project around the working directory answers), with the copies under ``cache``."""
    env = {k: v for k, v in os.environ.items() if k not in ("WHIRR_SERVER_URL", "WHIRR_TOKEN")}
    return {**env, **(server.env if server else {}), "WHIRR_CACHE_DIR": str(cache)}


@dataclass
class Twins:
    """A project and a server holding the same runs, and how to ask each."""

    project: Path
    server: ServerProcess
    elsewhere: Path  # a directory that is no project
    cache: Path

    def env(self, remote: bool) -> dict[str, str]:
        """The server's URL and token (or neither), and the test's own cache."""
        return environment(self.server if remote else None, self.cache)

    def run(self, remote: bool, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*WHIRR, *args],
            cwd=self.elsewhere if remote else self.project,
            env=self.env(remote),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def both(self, *args: str) -> tuple[str, str]:
        """The output of ``whirr ARGS`` in the project and against the server, each with
        its own run directory replaced by ``<runs>``."""
        outs = []
        for remote in (False, True):
            done = self.run(remote, *args)
            assert done.returncode == 0, (remote, args, done.stderr)
            runs_dir = self.server.data_dir / "runs" if remote else self.project / ".whirr/runs"
            outs.append(done.stdout.replace(str(runs_dir), "<runs>"))
        return outs[0], outs[1]


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    root = tmp_path_factory.mktemp("twins")
    project, builder = new_project(root / "project")
    record(builder)
    data = root / "server" / "data"
    data.mkdir(parents=True)
    # The server's log begins with its project.created, as the project's does (whirr
    # init), so that both logs number the recorded events alike.
    from whirr import identity

    identity.open_checked(identity.DataDir(data)).close()
    record(Builder(DataDir(data)))  # type: ignore[arg-type]
    server = ServerProcess(root / "server")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    yield Twins(project.root, server, elsewhere, root / "cache")
    server.stop()


COMPARES = [
    ("compare", "job-1", "job-2", "job-3", "--json"),
    ("compare", "job-1", "job-2", "job-3", "live", "-m", "loss", "--at", "min", "-o", "csv"),
    ("compare", "job-1", "job-2", "--at", "step=1"),  # the table, local times and all
    ("compare", "job-3", "live", "emp", "-m", "loss,val_loss", "--json"),  # prefixes
    ("export", "-f", "csv"),
    ("export", "-f", "json", "-s", "completed", "-t", "sweep"),
    ("export", "job-1", "job-3", "--metrics", "-f", "csv"),
    ("export", "--metrics", "--wide", "-f", "jsonl"),
    ("sql", "SELECT run_id, count(*), min(loss), max(step) FROM metrics GROUP BY ALL ORDER BY 1"),
    (
        "sql",
        "SELECT r.name, max(m.acc) AS acc FROM runs r JOIN metrics m ON m.run_id = r.id "
        "GROUP BY ALL ORDER BY 1",
        "--json",
    ),
    ("sql", "SELECT run_id, cpu_percent FROM system", "-o", "jsonl"),
    ("sql", "SELECT id, status, run_dir, config.lr FROM runs ORDER BY id", "-o", "csv"),
    ("sql", "SELECT count(*) FROM jobs"),
    ("runs", "--where", "config.lr < 0.05", "--sort", "summary.best_loss", "--json"),
    ("events", "--json", "-n", "7"),
    ("events", "--stream", "run-job-2", "--json"),
    ("events", "--type", "run.finished", "--after", "1", "-n", "2"),
]


@pytest.mark.parametrize("args", COMPARES, ids=lambda a: " ".join(a)[:60])
def test_same_output_from_a_project_and_a_server(twins: Twins, args: tuple[str, ...]) -> None:
    local, remote = twins.both(*args)
    assert local.strip(), args
    assert remote == local


def test_parquet_exports_hold_the_same_rows(twins: Twins, tmp_path: Path) -> None:
    tables = []
    for remote in (False, True):
        for what in ((), ("--metrics",)):
            out = tmp_path / f"{remote}-{len(what)}.parquet"
            done = twins.run(remote, "export", *what, "-o", str(out))
            assert done.returncode == 0, done.stderr
            tables.append(duckdb.connect().execute(f"SELECT * FROM '{out}'").fetchall())
    assert tables[0] == tables[2] and len(tables[0]) == 5
    assert tables[1] == tables[3] and len(tables[1]) == 2 * 2000 + 6 + 3 + 2


def test_doctor_checks_the_server(twins: Twins) -> None:
    local = twins.run(False, "doctor", "--json")
    remote = twins.run(True, "doctor", "--json")
    assert remote.returncode == 0, remote.stdout + remote.stderr
    checks = {c["name"]: c for c in json.loads(remote.stdout)}
    assert set(checks) == {"server", "version", "token", "store", "workers"}
    assert all(c["ok"] for c in checks.values()), checks
    assert checks["store"]["detail"].startswith("sqlite (")
    # One shape: the same keys for every check as the project's doctor.
    assert {tuple(sorted(c)) for c in json.loads(local.stdout)} == {("detail", "name", "ok")}
    assert {tuple(sorted(c)) for c in checks.values()} == {("detail", "name", "ok")}
    bad = twins.run(True, "doctor", "--server", twins.server.url)
    env_bad = {**twins.env(True), "WHIRR_TOKEN": "wrong"}
    wrong = subprocess.run(
        [*WHIRR, "doctor"], cwd=twins.elsewhere, env=env_bad, capture_output=True, text=True
    )
    assert bad.returncode == 0
    assert wrong.returncode == 1
    assert "[XX ] token:" in wrong.stdout and "WHIRR_TOKEN" in wrong.stdout
    down = subprocess.run(
        [*WHIRR, "doctor", "--server", "http://127.0.0.1:9"],
        cwd=twins.elsewhere,
        env=twins.env(False),
        capture_output=True,
        text=True,
    )
    assert down.returncode == 1 and "[XX ] server: cannot reach" in down.stdout


def test_rebuild_against_a_server_says_where_it_runs(twins: Twins) -> None:
    done = twins.run(True, "rebuild")
    assert done.returncode == 1
    assert "rebuilt on the server's machine" in done.stderr


def test_a_copy_follows_the_server_file_as_it_grows_or_is_replaced(twins: Twins) -> None:
    def live_loss() -> Any:
        done = twins.run(True, "compare", "live", "job-2", "-m", "loss", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["runs"][0]["metrics"]["loss"]

    server_file = twins.server.data_dir / "runs" / "live-run" / "metrics.jsonl"
    copy = twins.cache / f"127.0.0.1_{twins.server.port}" / "runs" / "live-run" / "metrics.jsonl"
    assert live_loss() == 0.6
    whole = server_file.read_bytes().rsplit(b"\n", 1)[0] + b"\n"
    assert copy.read_bytes() == whole  # the torn line is not copied
    # The torn line completes and more follow: only they are fetched and appended.
    with open(server_file, "ab") as fh:
        fh.write(b'amp":"2024-05-01T12:03:02.000000Z","step":2,"loss":0.5}\n')
        fh.write(b'{"_idx":3,"_timestamp":"2024-05-01T12:03:03.000000Z","step":3,"loss":0.4}\n')
    assert live_loss() == 0.4
    assert copy.read_bytes() == server_file.read_bytes()
    # A different file under the same run id (replaced, not grown) is copied afresh.
    server_file.write_bytes(metric_lines([{"step": 0, "loss": 7.0}, {"step": 1, "loss": 3.0}]))
    assert live_loss() == 3.0
    assert copy.read_bytes() == server_file.read_bytes()


def test_events_follow_from_a_server(twins: Twins) -> None:
    proc = subprocess.Popen(
        [*WHIRR, "events", "-f", "--json", "--type", "run.summary_updated", "-n", "1"],
        cwd=twins.elsewhere,
        env=twins.env(True),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["type"] == "run.summary_updated" and first["stream"] == "run-job-2"
        with WhirrClient(twins.server.url, token=twins.server.token) as client:
            client.update_summary("live-run", {"best_loss": 0.125})
        new = json.loads(proc.stdout.readline())
        assert set(new) == {"position", "recorded_at", "stream", "type", "event"}
        assert new["event"] == {
            "type": "run.summary_updated",
            "run_id": "live-run",
            "summary": {"best_loss": 0.125},
        }
        assert new["position"] > first["position"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_compare_in_a_project_asks_the_server_it_is_pointed_at(
    server: ServerProcess, tmp_path: Path
) -> None:
    # Regression (issue 15): with WHIRR_SERVER_URL set inside a project, `whirr runs`
    # showed the server's runs but `whirr compare job-1` silently the project's job-1.
    project, builder = new_project(tmp_path / "project")
    builder.run("job-1", job_id=1, config={"where": "project"}, metrics=[{"loss": 0.5}])
    with WhirrClient(server.url, token=server.token) as client:
        job_id = client.submit(["true"], str(tmp_path), config={"where": "server"}).job_id
        job = client.claim("w-analytics")
        assert job is not None and job.id == job_id
        client.started(job_id, "w-analytics", job.attempt, 1)
        client.complete(job_id, "w-analytics", job.attempt, 0)
    run_dir = server.data_dir / "runs" / job.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_bytes(metric_lines([{"step": 0, "loss": 42.0}]))
    env = environment(server, tmp_path / "cache")
    for ref in ("job-1", str(job_id)):
        done = subprocess.run(
            [*WHIRR, "compare", ref, "--json"],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        (shown,) = json.loads(done.stdout)["runs"]
        assert (shown["id"], shown["config"], shown["metrics"]) == (
            job.run_id,
            {"where": "server"},
            {"loss": 42.0},
        )
