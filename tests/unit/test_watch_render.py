"""``whirr watch`` rendering: a known state drawn to a string, and the sparkline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from whirr.watch import Detail, JobRow, WatchState, WorkerRow, render_text, sparkline
from whirr.watch.model import main_metric, order_jobs

NOW = datetime(2026, 3, 1, 12, 30, 0, tzinfo=UTC)


def job(id: int, status: str, name: str | None = None, **kwargs: object) -> JobRow:
    fields: dict[str, object] = {
        "id": id,
        "name": name,
        "status": status,
        "attempt": 1,
        "worker_id": None,
        "command": ["python", "train.py", "--lr", "0.1"],
        "run_id": f"job-{id}",
        "created_at": NOW - timedelta(minutes=10),
    }
    fields.update(kwargs)
    return JobRow(**fields)  # type: ignore[arg-type]


STATE = WatchState(
    source="/home/ada/proj",
    now=NOW,
    jobs=[
        job(3, "running", "lr-1", worker_id="gpu0", started_at=NOW - timedelta(seconds=75)),
        job(4, "queued", "lr-2"),
        job(2, "failed", "lr-0", worker_id="gpu0", finished_at=NOW - timedelta(seconds=90)),
    ],
    workers=[
        WorkerRow(
            id="gpu0",
            hostname="box",
            status="busy",
            job_ids=[3],
            heartbeat_at=NOW - timedelta(seconds=2),
            gpu_ids=[0],
        ),
        WorkerRow(
            id="old",
            hostname="box",
            status="offline",
            job_ids=[],
            heartbeat_at=NOW - timedelta(minutes=5),
        ),
    ],
    counts={"running": 1, "queued": 1, "failed": 1},
    selected=3,
    detail=Detail(
        job_id=3,
        log_lines=[f"epoch {i}" for i in range(12)],
        metric="loss",
        values=[1.0, 0.8, 0.5, 0.4, 0.2],
    ),
)


def test_a_known_state_renders_to_the_expected_text() -> None:
    text = render_text(STATE, width=100, log_lines=3, keys=True)
    lines = text.splitlines()
    assert lines[0] == "whirr watch  /home/ada/proj  ·  12:30:00"
    assert lines[1] == "Jobs  1 running · 1 queued · 1 failed"
    row = next(line for line in lines if "lr-1" in line)
    assert row.split() == [
        "▶",
        "3",
        "lr-1",
        "running",
        "1",
        "gpu0",
        "1m15s",
        "python",
        "train.py",
        "--lr",
        "0.1",
    ]
    assert next(line for line in lines if "lr-2" in line).split()[:4] == [
        "4",
        "lr-2",
        "queued",
        "1",
    ]
    assert "1m ago" in next(line for line in lines if "lr-0" in line)
    assert next(line for line in lines if line.strip().startswith("gpu0")).split() == [
        "gpu0",
        "box",
        "busy",
        "#3",
        "0",
        "2s",
        "ago",
    ]
    assert "Workers 1/2 online" in text
    assert "old  " in text and "offline" in text
    assert "╭─ Job #3 lr-1 · running" in text
    assert "│ loss █▆▄▃▁  last 0.2  min 0.2  max 1  (5 points)" in text
    # Only the last three log lines of the selected job.
    assert "epoch 9" in text and "epoch 11" in text and "epoch 8" not in text
    assert lines[-1] == "q quit · ↑/↓ or j/k select a job · PgUp/PgDn page · g/G first/last"


def test_empty_state_says_what_to_do() -> None:
    empty = WatchState(source="p", now=NOW, jobs=[], workers=[], counts={})
    text = render_text(empty, width=80)
    assert "queue empty" in text and "no jobs yet" in text
    assert "no workers (start one with `whirr worker`)" in text
    assert "no job selected" in text


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 7]) == "▁█"
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "▅▅▅"
    assert sparkline(list(range(100)), width=10) == "▁▂▃▃▄▅▆▆▇█"  # the last ten points


def test_jobs_are_ordered_running_queued_then_newest_finished() -> None:
    rows = [
        job(1, "completed"),
        job(2, "queued"),
        job(3, "running"),
        job(4, "failed"),
        job(5, "queued"),
    ]
    assert [r.id for r in order_jobs(rows, finished_limit=1)] == [3, 2, 5, 4]


def test_main_metric_is_the_first_numeric_user_key() -> None:
    assert (
        main_metric(
            [{"_idx": 0, "_timestamp": "t", "step": 1, "phase": "a", "ok": True, "loss": 0.5}]
        )
        == "loss"
    )
    assert main_metric([{"_idx": 0}]) is None


def test_a_running_job_whose_lease_ran_out_shows_its_worker_lost() -> None:
    lost = job(
        5,
        "running",
        worker_id="gone",
        started_at=NOW - timedelta(minutes=3),
        lease_expires_at=NOW - timedelta(seconds=42),
    )
    held = job(6, "running", worker_id="gpu0", lease_expires_at=NOW + timedelta(seconds=30))
    state = WatchState(source="p", now=NOW, jobs=[lost, held], workers=[], counts={"running": 2})
    lines = render_text(state, width=160).splitlines()
    assert "lease expired 42s ago: worker lost" in next(line for line in lines if " 5 " in line)
    assert "worker lost" not in next(line for line in lines if " 6 " in line)
