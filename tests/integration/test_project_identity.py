"""A project knows itself (issue 18): a database that was deleted, emptied, replaced or cut
short, or whose WAL is damaged, is one loud ``Error:`` line from every command, never an
empty history that reuses job ids and the old runs' directories; ``whirr init
--force-new-history`` starts over on purpose, numbering new jobs above every runs/job-N.

Real projects, real SQLite files, the real CLI in a subprocess."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import apsw
import pytest
from cli_runner import run_cli

from whirr.events import ProjectCreated
from whirr.identity import wal_damage
from whirr.project import Project, init_project
from whirr.services import Jobs


def new_project(where: Path, jobs: int = 2) -> Project:
    project, _ = init_project(where)
    store = project.open_store()
    try:
        for _ in range(jobs):
            Jobs(store).submit(["true"], str(project.root))
    finally:
        store.close()
    return project


def assert_loud(project: Project, *, what: str) -> None:
    """``status``, ``submit`` and ``init`` all refuse with one Error line naming ``what``."""
    for args in (["status"], ["submit", "--", "true"], ["init"]):
        result = run_cli(*args, cwd=project.root)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert what in lines[0] and "--force-new-history" in lines[0], lines[0]
        assert "Traceback" not in result.stderr


def test_the_first_event_and_the_id_file_name_the_project(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p")
    project_id = (project.dir / "project-id").read_text().strip()
    store = project.open_store()
    try:
        first = store.read(limit=1)[0]
    finally:
        store.close()
    assert first.position == 1
    assert isinstance(first.event, ProjectCreated) and first.event.project_id == project_id


def test_a_deleted_database_is_reported(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p")
    for path in project.dir.glob("whirr.db*"):
        path.unlink()
    assert_loud(project, what="is missing")
    assert not project.db_path.exists()  # nothing was created in its place


def test_a_zero_byte_database_is_reported(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p")
    for path in project.dir.glob("whirr.db*"):
        path.unlink()
    project.db_path.write_bytes(b"")
    assert_loud(project, what="is empty (0 bytes)")
    assert project.db_path.stat().st_size == 0


def test_a_database_replaced_by_another_projects_is_reported(tmp_path: Path) -> None:
    mine = new_project(tmp_path / "mine")
    other = new_project(tmp_path / "other", jobs=1)
    for path in mine.dir.glob("whirr.db*"):
        path.unlink()
    for path in other.dir.glob("whirr.db*"):
        shutil.copy(path, mine.dir / path.name)
    assert_loud(mine, what="belongs to another project")


def test_a_damaged_wal_holding_the_whole_history_is_reported(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p")
    wal = project.dir / "whirr.db-wal"
    assert wal.stat().st_size > 4096  # a small project: its history is in the WAL only
    data = bytearray(wal.read_bytes())
    data[32 + 24 + 100 : 32 + 24 + 140] = b"\xff" * 40  # scribble on the first page
    wal.write_bytes(bytes(data))
    assert wal_damage(project.db_path) is not None
    assert_loud(project, what="whirr.db-wal is damaged")
    assert wal.read_bytes() == bytes(data)  # the evidence is left as it was


def test_a_wal_with_a_damaged_header_is_reported(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p")
    wal = project.dir / "whirr.db-wal"
    data = bytearray(wal.read_bytes())
    data[8:16] = b"\x00" * 8
    wal.write_bytes(bytes(data))
    assert_loud(project, what="whirr.db-wal is damaged")


def test_a_healthy_wal_passes_the_full_check(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p", jobs=30)
    assert wal_damage(project.db_path) is None
    result = run_cli("status", cwd=project.root)
    assert result.returncode == 0, result.stderr


def test_a_database_cut_short_is_reported(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p", jobs=50)
    conn = apsw.Connection(str(project.db_path))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the history into whirr.db itself
    conn.close()
    size = project.db_path.stat().st_size
    with project.db_path.open("r+b") as fh:
        fh.truncate(size // 2)
    for args in (["status"], ["runs"]):
        result = run_cli(*args, cwd=project.root)
        assert result.returncode == 1, result.stdout
        assert result.stderr.startswith("Error: "), result.stderr
        assert "Traceback" not in result.stderr


def test_force_new_history_numbers_new_jobs_above_every_old_run_dir(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p")
    (project.runs_dir / "job-7").mkdir()
    (project.runs_dir / "job-7" / "output.log").write_text("the old run's output\n")
    for path in project.dir.glob("whirr.db*"):
        path.unlink()
    assert_loud(project, what="is missing")
    result = run_cli("init", "--force-new-history", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert "new, empty history" in result.stdout
    submitted = run_cli("submit", "--", "true", cwd=project.root, check=True)
    assert "Submitted job #8" in submitted.stdout, submitted.stdout
    assert (project.runs_dir / "job-7" / "output.log").read_text() == "the old run's output\n"
    status = run_cli("status", "--json", cwd=project.root, check=True)
    assert [job["id"] for job in json.loads(status.stdout)["jobs"]] == [8]


def test_a_log_begun_by_an_older_whirr_is_adopted(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p")
    # An older whirr wrote neither the file nor the event: take both away.
    (project.dir / "project-id").unlink()
    conn = apsw.Connection(str(project.db_path))
    conn.execute("DELETE FROM events WHERE type = 'project.created'")
    conn.close()
    result = run_cli("status", cwd=project.root, check=True)
    assert "true" in result.stdout
    _, position = (project.dir / "project-id").read_text().split()
    assert int(position) == 4  # appended after the two submits' events
    for path in project.dir.glob("whirr.db*"):
        path.unlink()
    assert_loud(project, what="is missing")


@pytest.mark.parametrize("damage", ["missing", "wal"])
def test_doctor_reports_the_damage_and_exits_1(tmp_path: Path, damage: str) -> None:
    project = new_project(tmp_path / "p")
    if damage == "missing":
        for path in project.dir.glob("whirr.db*"):
            path.unlink()
    else:
        wal = project.dir / "whirr.db-wal"
        data = bytearray(wal.read_bytes())
        data[-500:-400] = b"\x01" * 100  # the last frame: only the full check sees it
        wal.write_bytes(bytes(data))
    result = run_cli("doctor", "--json", cwd=project.root)
    assert result.returncode == 1, result.stdout
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    bad = [c for c in checks.values() if c["ok"] is False]
    assert bad and any(
        "--force-new-history" in c["detail"] or "damaged" in c["detail"] for c in bad
    ), checks
