"""``whirr backup`` / ``whirr restore`` on real projects, through the real CLI.

A backup taken while a worker writes is a consistent log; restoring it is recorded
(``project.restored``), passes the identity check instead of being reported as a lost
history, and new jobs are numbered above every run directory, also those made after
the backup. A damaged or foreign backup is refused before anything is replaced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import apsw

from tests.cli_runner import WHIRR, run_cli

DEADLINE_S = 60.0


def _init(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    run_cli("init", cwd=root, check=True)


def _submit(root: Path, *argv: str) -> int:
    out = run_cli("submit", "--json", "--", *argv, cwd=root, check=True).stdout
    return int(json.loads(out)["id"])


def _wait(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _statuses(root: Path) -> dict[int, str]:
    out = run_cli("status", "-a", "--json", cwd=root, check=True).stdout
    return {job["id"]: job["status"] for job in json.loads(out)["jobs"]}


def test_a_backup_taken_while_a_worker_writes_restores_into_a_new_place(tmp_path: Path) -> None:
    project = tmp_path / "p"
    _init(project)
    for i in range(6):
        _submit(project, sys.executable, "-c", f"print('job {i}')")
    worker = subprocess.Popen(
        [*WHIRR, "worker", "--exit-when-empty"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: "completed" in _statuses(project).values(), "a first job to end")
        backup = tmp_path / "backup"
        out = run_cli("backup", str(backup), "--json", cwd=project, check=True).stdout
        manifest = json.loads(out)
    finally:
        worker.wait(timeout=DEADLINE_S)
    assert manifest["position"] > 0 and manifest["runs"] is True
    assert {p.name for p in backup.iterdir()} >= {"whirr.db", "project-id", "backup.json", "runs"}
    conn = apsw.Connection(str(backup / "whirr.db"))
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    last = conn.execute("SELECT MAX(position) FROM events").fetchall()[0][0]
    conn.close()
    assert last == manifest["position"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = json.loads(run_cli("restore", str(backup), "--json", cwd=elsewhere, check=True).stdout)
    assert done["position"] == manifest["position"] + 1  # the restore is recorded after it
    events = run_cli("events", "--json", cwd=elsewhere, check=True).stdout
    restored = [json.loads(line) for line in events.splitlines() if "project.restored" in line]
    assert len(restored) == 1 and restored[0]["event"]["backup_position"] == manifest["position"]
    doctor = run_cli("doctor", cwd=elsewhere)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "[ok ] identity" in doctor.stdout  # not reported as a lost history
    assert (elsewhere / ".whirr" / "config.yaml").read_bytes() == (
        project / ".whirr" / "config.yaml"
    ).read_bytes()
    assert _statuses(elsewhere)  # the views came with it
    # Ids continue above every restored run directory.
    highest = max(int(p.name.split("-")[1]) for p in (elsewhere / ".whirr" / "runs").iterdir())
    assert _submit(elsewhere, "true") == highest + 1


def test_restore_over_a_live_project_needs_force_and_keeps_the_old_files(tmp_path: Path) -> None:
    project = tmp_path / "p"
    _init(project)
    _submit(project, "true")
    backup = tmp_path / "b"
    run_cli("backup", str(backup), cwd=project, check=True)
    after = [_submit(project, "true") for _ in range(3)]  # jobs the backup does not hold
    # A run directory made after the backup (its job ran): no new job may write into it.
    (project / ".whirr" / "runs" / f"job-{after[-1]}").mkdir(parents=True)

    refused = run_cli("restore", str(backup), cwd=project)
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: ") and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert sorted(_statuses(project)) == [1, *after]  # nothing was replaced

    done = run_cli("restore", str(backup), "--force", cwd=project, check=True).stdout
    assert "previous database is in" in done
    aside = [p for p in (project / ".whirr").iterdir() if p.name.startswith("replaced-")]
    assert len(aside) == 1 and (aside[0] / "whirr.db").exists()
    assert sorted(_statuses(project)) == [1]
    assert _submit(project, "true") == after[-1] + 1


def test_a_damaged_or_foreign_backup_is_refused_before_anything_changes(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _init(one)
    _init(two)
    _submit(one, "true")
    backup = tmp_path / "b"
    run_cli("backup", str(backup), "--no-runs", cwd=one, check=True)
    assert not (backup / "runs").exists()

    foreign = tmp_path / "foreign"
    run_cli("backup", str(foreign), cwd=two, check=True)
    os.replace(foreign / "whirr.db", tmp_path / "two.db")
    os.replace(backup / "whirr.db", foreign / "whirr.db")  # one's log under two's manifest
    answer = run_cli("restore", str(foreign), "--force", cwd=one)
    assert answer.returncode == 1 and "does not begin with project" in answer.stderr

    damaged = backup / "whirr.db"
    os.replace(foreign / "whirr.db", damaged)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096
    damaged.write_bytes(bytes(data))
    answer = run_cli("restore", str(backup), "--force", cwd=one)
    assert answer.returncode == 1 and answer.stderr.startswith("Error: ")
    assert "Traceback" not in answer.stderr
    assert sorted(_statuses(one)) == [1]  # the project was left as it was
    assert not [p for p in (one / ".whirr").iterdir() if p.name.startswith("replaced-")]

    not_empty = run_cli("backup", str(backup), cwd=one)
    assert not_empty.returncode == 1 and "not an empty directory" in not_empty.stderr


def test_a_servers_sqlite_data_dir_backs_up_and_restores(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = subprocess.Popen(
        [*WHIRR, "server", "-d", str(data), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: (data / "project-id").exists(), "the server to know its data dir")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=DEADLINE_S)
    backup = tmp_path / "b"
    run_cli("backup", "-d", str(data), str(backup), cwd=tmp_path, check=True)
    refused = run_cli("restore", "-d", str(data), str(backup), cwd=tmp_path)
    assert refused.returncode == 1 and "--force" in refused.stderr
    run_cli("restore", "-d", str(data), str(backup), "--force", cwd=tmp_path, check=True)
    no_db = run_cli("backup", "-d", str(tmp_path / "pg-server"), str(tmp_path / "x"), cwd=tmp_path)
    assert no_db.returncode == 1 and "pg_dump" in no_db.stderr
