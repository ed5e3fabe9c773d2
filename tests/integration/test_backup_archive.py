"""``whirr backup`` / ``whirr restore`` of a project whose liveness history was archived
(issue 19 items 3 and 5): the segments travel with the log, so the restored project's
full replay folds the events the original's does, and a backup that lost a segment is
refused before anything changes."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.cli_runner import run_cli
from tests.store.store_support import views
from whirr.clock import utc_now
from whirr.events import Recorded, encode, tag_of
from whirr.services import Jobs, Workers
from whirr.store.retention_history import History
from whirr.store.sqlite import SQLiteStore


def _db(root: Path) -> str:
    return str(root / ".whirr" / "whirr.db")


def _month_old_history(root: Path) -> None:
    """Two workers ran jobs with heartbeats a month ago; w2 was never seen again, so its
    last sighting (a worker view) lives only in archived events. One fresh event."""
    run_cli("init", cwd=root, check=True)
    past = utc_now() - timedelta(days=30)
    store = SQLiteStore(_db(root), clock=lambda: past)
    try:
        jobs, workers = Jobs(store, clock=lambda: past), Workers(store)
        for worker in ("w1", "w2"):
            workers.register(worker, "host")
            jobs.submit(["true"], str(root), check=False)
            job = jobs.claim(worker, 60)
            assert job is not None
            for _ in range(4):
                jobs.heartbeat(job.id, worker, job.attempt, 60)
            jobs.finish(job.id, worker, job.attempt, 0)
            for _ in range(3):
                workers.seen(worker)
    finally:
        store.close()
    fresh = SQLiteStore(_db(root))
    try:
        Workers(fresh).seen("w1")
    finally:
        fresh.close()


def _written(root: Path) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """The log as written (live rows and segments merged) and the views after a full
    replay (``whirr rebuild --full``)."""
    run_cli("rebuild", "--full", cwd=root, check=True)
    store = SQLiteStore(_db(root))
    try:
        found: list[Recorded] = []
        history = History(store)
        while batch := history.read(found[-1].position if found else 0, 5):
            found.extend(batch)
        return [_row(r) for r in found], views(store)
    finally:
        store.close()


def _row(rec: Recorded) -> tuple[Any, ...]:
    return (rec.position, rec.stream, tag_of(rec.event), encode(rec.event), rec.recorded_at)


def test_a_restored_projects_full_replay_equals_the_originals(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "p", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    _month_old_history(project)
    archived = json.loads(run_cli("log", "archive", "--json", cwd=project, check=True).stdout)
    assert archived["archived"] == 14  # 8 heartbeats and 6 worker.seen
    original_log, original_views = _written(project)

    backup = tmp_path / "backup"
    manifest = json.loads(run_cli("backup", str(backup), "--json", cwd=project, check=True).stdout)
    assert manifest["archive"] == archived["segments"] and manifest["archive"]
    for name in manifest["archive"]:
        assert (backup / "archive" / name).stat().st_mode & 0o777 == 0o400
    assert not (backup / "checkpoints").exists()  # derived: the restore's rebuild makes one

    run_cli("restore", str(backup), cwd=elsewhere, check=True)
    restored_log, restored_views = _written(elsewhere)
    # The same history, event for event, and then the restore's own event.
    assert restored_log[:-1] == original_log
    assert restored_log[-1][2] == "project.restored"
    for name in ("head", "queue"):  # what project.restored itself changes
        restored_views.pop(name)
        original_views.pop(name)
    assert restored_views == original_views
    segments = json.loads(
        "[" + ",".join(run_cli("log", "segments", "--json", cwd=elsewhere).stdout.split()) + "]"
    )
    assert [Path(s["path"]).name for s in segments] == manifest["archive"]


def test_a_backup_missing_a_segment_is_refused(tmp_path: Path) -> None:
    project, other = tmp_path / "p", tmp_path / "other"
    project.mkdir()
    other.mkdir()
    _month_old_history(project)
    run_cli("log", "archive", cwd=project, check=True)
    backup = tmp_path / "backup"
    run_cli("backup", str(backup), cwd=project, check=True)
    [segment] = (backup / "archive").iterdir()
    os.replace(segment, tmp_path / segment.name)

    refused = run_cli("restore", str(backup), cwd=other)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("Error: ") and "lacks 1 archive segment" in refused.stderr
    assert not (other / ".whirr").exists()  # nothing was put in place


def test_restoring_over_a_project_moves_its_archive_aside(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    _month_old_history(project)
    backup = tmp_path / "backup"
    run_cli("backup", str(backup), cwd=project, check=True)  # before anything was archived
    run_cli("log", "archive", cwd=project, check=True)
    [segment] = (project / ".whirr" / "archive").glob("log-*")

    run_cli("restore", str(backup), "--force", cwd=project, check=True)
    # The backup's log holds every event live: the replaced log's segment goes aside with
    # it, or a replay would read its events twice.
    assert not list((project / ".whirr" / "archive").glob("log-*"))
    [aside] = [p for p in (project / ".whirr").iterdir() if p.name.startswith("replaced-")]
    assert (aside / "archive" / segment.name).is_file()
    log, _ = _written(project)
    assert len({row[0] for row in log}) == len(log)
