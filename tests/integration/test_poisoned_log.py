"""A log holding events that do not decode bricks nothing (issue 18, item 2): the issue's
poison written straight into a project's SQLite log, then the real CLI in subprocesses
(and ``whirr server``) over it: every command works, warns once with the position,
``whirr doctor`` reports it and exits 1, ``whirr repair`` voids it and the warning stops.
"""

from __future__ import annotations

from pathlib import Path

import apsw
import httpx
import pytest
from cli_runner import run_cli
from server_process import ServerProcess

#: Stored events that do not decode: a sweep's bad submit options (the issue's repro),
#: garbage, an event type this whirr does not know.
POISON = [
    (
        "job-2",
        "job.submitted",
        b'{"type":"job.submitted","job_id":2,"command_argv":["echo"],'
        b'"workdir":"/","run_id":"job-2","env":{"A":1}}',
    ),
    (
        "job-3",
        "job.submitted",
        b'{"type":"job.submitted","job_id":3,"command_argv":["echo"],'
        b'"workdir":"/","run_id":"job-3","priority":"high","gpus":1.5,"after_any":7}',
    ),
    ("job-4", "garbage", b"\xff\x00 not json"),
    ("job-5", "job.teleported", b'{"type":"job.teleported","job_id":5}'),
]


def poison(db: Path) -> list[int]:
    """Append ``POISON`` to the log in ``db`` as raw rows; their positions."""
    conn = apsw.Connection(str(db))
    try:
        conn.set_busy_timeout(10_000)
        positions = []
        for stream, kind, data in POISON:
            conn.execute(
                "INSERT INTO events (stream, type, recorded_us, data) VALUES (?, ?, 0, ?)",
                (stream, kind, data),
            )
            positions.append(conn.last_insert_rowid())
        return positions
    finally:
        conn.close()


def ok(result: object) -> str:
    """stderr of a command that must have succeeded without a traceback."""
    assert result.returncode == 0, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    return result.stderr  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, list[int]]:
    """A project with job 1 queued, then the poison, then job 6 queued."""
    run_cli("init", cwd=tmp_path, check=True)
    run_cli("submit", "-n", "first", "--", "true", cwd=tmp_path, check=True)
    positions = poison(tmp_path / ".whirr" / "whirr.db")
    return tmp_path, positions


def test_every_command_works_over_poison_and_repair_fixes_forward(
    project: tuple[Path, list[int]],
) -> None:
    root, positions = project
    first = positions[0]
    # Replay skips the poison: rebuild works, and warns once, naming the position.
    err = ok(run_cli("rebuild", cwd=root))
    assert err.count("Warning:") == 1 and f"position(s) {first}, " in err
    assert "Expected `str`, got `int` - at `$.env[...]`" in err
    out = run_cli("events", "-n", "100", cwd=root)
    err = ok(out)
    assert err.count("Warning:") == 1 and "whirr repair" in err
    assert out.stdout.count('"type":"log.unreadable"') == len(POISON)
    submitted = run_cli("submit", "-n", "after", "--", "true", cwd=root)
    ok(submitted)
    assert "Traceback" not in ok(run_cli("status", cwd=root))
    ok(run_cli("sweeps", cwd=root))
    ok(run_cli("watch", "--once", cwd=root))
    ok(run_cli("cancel", "1", cwd=root))
    worker = run_cli("worker", "--exit-when-empty", cwd=root, timeout=60)
    ok(worker)
    status = run_cli("status", "--all", cwd=root)
    ok(status)
    assert "cancelled" in status.stdout and "completed" in status.stdout
    # doctor reports the poison and exits 1.
    doctor = run_cli("doctor", cwd=root)
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    assert f"{len(POISON)} event(s) do not decode, at position(s) {first}, " in doctor.stdout
    # repair voids it by appending one event (history untouched), and the warning stops.
    dry = run_cli("repair", "--dry-run", cwd=root)
    assert f"{len(POISON)} event(s) would be voided" in dry.stdout
    repaired = run_cli("repair", cwd=root)
    ok(repaired)
    assert f"Voided {len(POISON)} event(s) at position(s) {first}, " in repaired.stdout
    for args in (("rebuild",), ("events", "-n", "100"), ("status",), ("sweeps",)):
        assert "Warning" not in ok(run_cli(*args, cwd=root)), args
    events = run_cli("events", "-n", "100", cwd=root)
    assert events.stdout.count('"type":"log.unreadable"') == len(POISON)  # still there
    assert '"type":"log.voided"' in events.stdout
    assert run_cli("doctor", cwd=root).returncode == 0
    assert "Nothing to repair" in run_cli("repair", cwd=root).stdout


def test_the_server_answers_over_a_poisoned_log(tmp_path: Path) -> None:
    data = tmp_path / "srv" / "data"
    data.mkdir(parents=True)
    from whirr.services import Jobs
    from whirr.store.sqlite import SQLiteStore

    store = SQLiteStore(str(data / "whirr.db"))
    Jobs(store).submit(["true"], "/", check=False)
    store.close()
    positions = poison(data / "whirr.db")
    server = ServerProcess(tmp_path / "srv")
    try:
        with server.http() as http:
            status = http.get("/status")
            assert status.status_code == 200, status.text
            assert status.json()["queued"] == 1
        listed = run_cli("events", "-n", "100", cwd=tmp_path, env=server.env)
        assert listed.returncode == 0 and "Traceback" not in listed.stderr
        assert listed.stdout.count("log.unreadable") == len(POISON)
        assert str(positions[0]) in listed.stdout
    except httpx.HTTPError:
        raise AssertionError(server.output()) from None
    finally:
        server.stop()
