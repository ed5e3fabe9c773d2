"""How long the workers views remember a silent worker is a setting: ``whirr server
--forget-workers-after DURATION`` and a project's ``forget_workers_after`` (seconds) in
``.whirr/config.yaml`` (default 7 days). A worker not heard from for longer is left out
of ``whirr workers``, ``GET /workers`` and the status counts; ``--all`` /
``?forgotten=true`` still list it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cli_runner import run_cli as run_local_cli
from server_process import ServerProcess, run_cli

from whirr.clock import utc_now
from whirr.config import Config, ConfigError, load_config
from whirr.facade import open_project
from whirr.project import Project
from whirr.services.workers import FORGET_WORKERS_AFTER, Workers
from whirr.store.sqlite import SQLiteStore


def _two_workers(db: Path) -> None:
    """``quiet`` last heard from two hours ago, ``here`` just now."""
    two_hours_ago = utc_now() - timedelta(hours=2)
    old = SQLiteStore(str(db), lambda: two_hours_ago)
    new = SQLiteStore(str(db))
    try:
        Workers(old).register("quiet", "h", pid=1, gpu_ids=[], slots=1)
        Workers(new).register("here", "h", pid=2, gpu_ids=[], slots=1)
    finally:
        old.close()
        new.close()


def test_a_server_forgets_workers_after_its_setting(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, args=("--forget-workers-after", "1h"))
    try:
        _two_workers(server.data_dir / "whirr.db")
        with server.http() as http:
            listed = http.get("/workers").json()["workers"]
            assert [w["id"] for w in listed] == ["here"]
            every = http.get("/workers", params={"forgotten": "true"}).json()["workers"]
            assert [w["id"] for w in every] == ["here", "quiet"]
            assert http.get("/status").json()["workers_total"] == 1
        shown = run_cli("workers", server=server, cwd=tmp_path)
        assert "here" in shown.stdout and "quiet" not in shown.stdout, shown.stdout
        assert "quiet" in run_cli("workers", "--all", server=server, cwd=tmp_path).stdout
    finally:
        server.stop()
    # The default (7 days) remembers a worker two hours silent.
    again = ServerProcess(tmp_path)
    try:
        with again.http() as http:
            listed = http.get("/workers").json()["workers"]
            assert sorted(w["id"] for w in listed) == ["here", "quiet"]
    finally:
        again.stop()


@pytest.mark.parametrize(
    ("value", "why"),
    [("soon", "is not a duration"), ("0s", "must be positive"), ("1m", "--worker-timeout")],
)
def test_a_server_refuses_a_bad_forget_workers_after(tmp_path: Path, value: str, why: str) -> None:
    out = run_local_cli(
        "server", "-d", str(tmp_path / "data"), "--no-auth", "-p", "1",
        "--forget-workers-after", value, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "--forget-workers-after" in out.stderr and why in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_project_forgets_workers_after_its_config(project: Project) -> None:
    _two_workers(project.db_path)
    whirr = open_project(project.root)
    try:
        assert whirr.status().workers_total == 2  # the default remembers 7 days
    finally:
        whirr.close()
    project.config_path.write_text(project.config_path.read_text() + "forget_workers_after: 3600\n")
    shown = run_local_cli("workers", cwd=project.root, check=True)
    assert "here" in shown.stdout and "quiet" not in shown.stdout, shown.stdout
    assert "quiet" in run_local_cli("workers", "--all", cwd=project.root, check=True).stdout
    whirr = open_project(project.root)
    try:
        assert whirr.status().workers_total == 1
        assert [w.id for w in whirr.workers()] == ["here"]
        assert sorted(w.id for w in whirr.workers(forgotten=True)) == ["here", "quiet"]
    finally:
        whirr.close()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("forget_workers_after: 0\n", "forget_workers_after must be a number > 0"),
        ("forget_workers_after: 60\n", "forget_workers_after must be at least heartbeat_timeout"),
        ("forget_workers_after: .inf\n", "forget_workers_after must be a number"),
    ],
)
def test_the_config_key_is_validated(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("heartbeat_timeout: 120\n" + text)
    with pytest.raises(ConfigError, match=why):
        load_config(path)
    path.write_text("heartbeat_timeout: 120\nforget_workers_after: 86400\n")
    assert load_config(path).forget_workers_after == 86400
    assert Config().forget_workers_after == FORGET_WORKERS_AFTER.total_seconds()
