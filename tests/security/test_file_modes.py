"""What whirr writes is its owner's only, whatever the umask (issue 22, item 11).

The usual umask (022) made ``whirr.db`` (every job's command, config and environment),
its WAL and the run files 0644: readable by any local user. Every process here runs for
real under ``umask 022``: ``whirr init``, a local worker and a tracked job, a direct
run, ``whirr server`` creating its data dir and token, a remote worker and its job.
Then nothing they created may grant group or others anything. The server refuses a
token file that others could read or that is a symlink or another user's; ``whirr
doctor`` reports a project whose database others can read.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import WHIRR, free_port, stop_process, wait_for

from whirr.api.auth import TokenFileError, load_or_create_token
from whirr.client import WhirrClient

#: A tracked job: metrics.jsonl, system.jsonl, config.json, meta.json, requirements.txt,
#: an artifact; and output.log from the worker.
TRACKED = (
    "import pathlib, whirr\n"
    "run = whirr.init(config={'lr': 0.1}, system_metrics_interval=0.1)\n"
    "run.log({'loss': 1.0})\n"
    "pathlib.Path('weights.bin').write_bytes(b'w')\n"
    "run.save_artifact('weights.bin')\n"
    "print('secret-ish output')\n"
    "run.finish()\n"
)


def umask_022(cmd: list[str]) -> list[str]:
    """``cmd`` run under ``umask 022``, whatever the test runner's umask is."""
    return ["sh", "-c", 'umask 022 && exec "$@"', "sh", *cmd]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHIRR_")}
    return {**env, **extra}


def whirr(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        umask_022([*WHIRR, *args]),
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def open_to_others(root: Path) -> list[str]:
    """Every path under ``root`` (and ``root``) that grants group or others any bit."""
    found = []
    for path in [root, *sorted(root.rglob("*"))]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if not path.is_symlink() and mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {mode:04o}")
    return found


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_local_project_its_database_wal_and_job_run_files_are_owner_only(tmp_path: Path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "train.py").write_text(TRACKED)
    assert whirr("init", cwd=project).returncode == 0
    submitted = whirr("submit", "-n", "tracked", "--", sys.executable, "train.py", cwd=project)
    assert submitted.returncode == 0, submitted.stderr
    worker = whirr("worker", "--exit-when-empty", "-q", cwd=project)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    # A direct run (python train.py, no worker) writes its run from the library alone.
    direct = subprocess.run(
        umask_022([sys.executable, "train.py"]),
        cwd=project,
        env=clean_env(),
        capture_output=True,
        timeout=120,
    )
    assert direct.returncode == 0, direct.stderr

    dot = project / ".whirr"
    run = dot / "runs" / "job-1"
    assert (run / "meta.json").exists() and (run / "output.log").exists()
    assert b"secret-ish output" in (run / "output.log").read_bytes()
    for name in ("metrics.jsonl", "system.jsonl", "config.json", "requirements.txt"):
        assert (run / name).exists(), name
    assert (run / "artifacts" / "weights.bin").exists()
    assert len(list((dot / "runs").glob("local-*"))) == 1
    # The WAL is kept between processes (NO_CKPT_ON_CLOSE): it holds the latest events.
    assert (dot / "whirr.db-wal").exists()
    assert mode_of(dot / "whirr.db") == 0o600
    assert mode_of(dot / "whirr.db-wal") == 0o600
    assert mode_of(dot) == 0o700
    assert open_to_others(dot) == []


def test_a_project_made_by_whirr_init_in_a_new_folder_keeps_the_umask_for_that_folder(
    tmp_path: Path,
):
    result = whirr("init", str(tmp_path / "new" / "proj"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert mode_of(tmp_path / "new" / "proj") == 0o755  # the user's code folder
    assert open_to_others(tmp_path / "new" / "proj" / ".whirr") == []


@pytest.fixture
def server_without_data_dir(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """``whirr server`` under umask 022 on a data dir it creates, making its own token:
    (url, token, data dir)."""
    data = tmp_path / "srv" / "data"
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            umask_022([*WHIRR, "server", "-p", str(port), "-d", str(data)]),
            env=clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log_path.read_text()
        try:
            return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, timeout=30)
        found = re.search(r"export WHIRR_TOKEN=(\S+)", log_path.read_text())
        assert found, log_path.read_text()
        yield url, found.group(1), data
    finally:
        stop_process(proc)


def test_a_server_data_dir_token_database_and_remote_run_files_are_owner_only(
    server_without_data_dir: tuple[str, str, Path], tmp_path: Path
):
    url, token, data = server_without_data_dir
    (tmp_path / "train.py").write_text(TRACKED)
    env = clean_env(WHIRR_SERVER_URL=url, WHIRR_TOKEN=token)
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            umask_022([*WHIRR, "worker", "--server", url, "-d", str(data), "--exit-when-empty"]),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with WhirrClient(url, token=token) as client:
            job_id = client.submit([sys.executable, "train.py"], str(tmp_path)).job_id
            job = client.wait_for_job(job_id, timeout=90)
        assert job.status == "completed", (tmp_path / "worker.log").read_text()
        worker.wait(timeout=60)
    finally:
        stop_process(worker)
    run = data / "runs" / "job-1"
    for name in ("output.log", "metrics.jsonl", "system.jsonl", "config.json", "meta.json"):
        assert (run / name).exists(), name
    assert mode_of(data / "token") == 0o600
    assert mode_of(data / "whirr.db") == 0o600
    assert mode_of(data) == 0o700
    # The data dir's missing parent was created by the server too, and owner-only.
    assert mode_of(data.parent) == 0o700
    assert open_to_others(data) == []
    # A client's copies of the run's metrics (compare/export/sql against a server).
    cache = tmp_path / "client-cache"
    exported = whirr(
        "export", "job-1", "--metrics", cwd=tmp_path, env={**env, "WHIRR_CACHE_DIR": str(cache)}
    )
    assert exported.returncode == 0, exported.stderr
    assert "loss" in exported.stdout
    copies = list(cache.rglob("metrics.jsonl"))
    assert copies, sorted(cache.rglob("*"))
    # The copies are whirr's (0600); every folder is 0700, so what DuckDB writes in
    # them (parquet, with the umask's mode) is closed too.
    assert [mode_of(c) for c in copies] == [0o600]
    folders = [p for p in [cache, *cache.rglob("*")] if p.is_dir()]
    assert {mode_of(f) for f in folders} == {0o700}, open_to_others(cache)


def test_a_remote_workers_own_data_dir_is_owner_only(
    server_without_data_dir: tuple[str, str, Path], tmp_path: Path
):
    """A worker with a data dir of its own (not the server's) makes its runs/ 0700."""
    url, token, _ = server_without_data_dir
    own = tmp_path / "worker-data"
    env = clean_env(WHIRR_SERVER_URL=url, WHIRR_TOKEN=token)
    done = subprocess.run(
        umask_022([*WHIRR, "worker", "--server", url, "-d", str(own), "--exit-when-empty"]),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert mode_of(own / "runs") == 0o700


def start_server(data: Path, tmp_path: Path) -> subprocess.CompletedProcess[str] | None:
    """``whirr server`` on ``data``: the finished process when it exited within 20 s
    (it refused to start), else None (it served; it is stopped again)."""
    port = free_port()
    proc = subprocess.Popen(
        umask_022([*WHIRR, "server", "-p", str(port), "-d", str(data)]),
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                stop_process(proc)  # type: ignore[arg-type]
                proc.communicate()
                return None
        except httpx.TransportError:
            time.sleep(0.05)
    if proc.poll() is None:
        stop_process(proc)  # type: ignore[arg-type]
    out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_server_refuses_a_token_file_others_can_read_and_leaves_it_as_it_is(
    tmp_path: Path,
):
    data = tmp_path / "data"
    data.mkdir()
    (data / "token").write_text("leaked-maybe\n")
    os.chmod(data / "token", 0o644)
    refused = start_server(data, tmp_path)
    assert refused is not None, "the server started with a world-readable token"
    assert refused.returncode == 2
    assert "open to other users (mode 0644)" in refused.stderr
    assert f"chmod 600 {data / 'token'}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert mode_of(data / "token") == 0o644  # not repaired behind the operator's back
    # The operator's fix is enough: the same token is served.
    os.chmod(data / "token", 0o600)
    assert start_server(data, tmp_path) is None


def test_the_server_refuses_a_token_file_that_is_a_symlink(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("someone-elses\n")
    os.chmod(elsewhere, 0o600)
    (data / "token").symlink_to(elsewhere)
    refused = start_server(data, tmp_path)
    assert refused is not None and refused.returncode == 2, refused
    assert "is a symbolic link" in refused.stderr
    assert elsewhere.read_text() == "someone-elses\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_the_server_refuses_a_token_file_of_another_user(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "token").write_text("planted\n")
    os.chmod(data / "token", 0o600)
    os.chown(data / "token", 65534, 65534)
    refused = start_server(data, tmp_path)
    assert refused is not None and refused.returncode == 2, refused
    assert "belongs to uid 65534" in refused.stderr


def test_a_token_file_of_another_user_is_refused_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The same check without root: the server's user is made to look like another."""
    (tmp_path / "token").write_text("planted\n")
    os.chmod(tmp_path / "token", 0o600)
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(tmp_path / "token").st_uid + 1)
    with pytest.raises(TokenFileError, match="belongs to uid"):
        load_or_create_token(tmp_path)


def test_a_fifo_or_folder_named_token_is_refused_without_blocking(tmp_path: Path):
    os.mkfifo(tmp_path / "token", 0o600)
    with pytest.raises(TokenFileError, match="not a regular file"):
        load_or_create_token(tmp_path)  # a FIFO with no writer: open() must not wait
    os.unlink(tmp_path / "token")
    (tmp_path / "token").mkdir(mode=0o700)
    with pytest.raises(TokenFileError, match="not a regular file"):
        load_or_create_token(tmp_path)


def test_an_empty_token_file_others_can_read_gets_a_new_token_at_0600(tmp_path: Path):
    (tmp_path / "token").touch(mode=0o644)
    os.chmod(tmp_path / "token", 0o644)
    token, created = load_or_create_token(tmp_path)
    assert created and token
    assert mode_of(tmp_path / "token") == 0o600
    assert (tmp_path / "token").read_text().strip() == token
    assert load_or_create_token(tmp_path) == (token, False)


def test_doctor_reports_a_database_other_users_can_read_and_the_fix_works(tmp_path: Path):
    project = tmp_path / "proj"
    project.mkdir()
    assert whirr("init", cwd=project).returncode == 0
    assert whirr("submit", "--", "true", cwd=project).returncode == 0  # a WAL with events
    dot = project / ".whirr"
    healthy = whirr("doctor", cwd=project)
    assert "[ok ] permissions:" in healthy.stdout, healthy.stdout
    # A project made by an older whirr under umask 022.
    os.chmod(dot, 0o755)
    os.chmod(dot / "whirr.db", 0o644)
    os.chmod(dot / "whirr.db-wal", 0o644)
    exposed = whirr("doctor", cwd=project)
    assert exposed.returncode == 1
    line = next(x for x in exposed.stdout.splitlines() if "permissions" in x)
    assert line.startswith("[XX ] permissions:"), line
    assert "whirr.db 0644 (group and others)" in line
    assert "whirr.db-wal 0644 (group and others)" in line
    fix = line.split("Fix: ", 1)[1]
    assert fix == f"chmod 700 {dot} && chmod 600 {dot}/whirr.db*"
    subprocess.run(["sh", "-c", fix], check=True)
    fixed = whirr("doctor", cwd=project)
    assert "[ok ] permissions:" in fixed.stdout, fixed.stdout
    # A group-readable database behind a .whirr/ the group cannot enter is no exposure.
    os.chmod(dot / "whirr.db", 0o640)
    assert "[ok ] permissions:" in whirr("doctor", cwd=project).stdout
