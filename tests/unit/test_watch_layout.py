"""``whirr watch`` frames at real terminal sizes, compared with snapshots of the screen.

Each snapshot under ``tests/fixtures/watch/`` is the plain text of one frame exactly as the
live view draws it (``render_text`` with a height: every row of the screen, cut below).
A frame that differs from its snapshot fails the test. After a deliberate change of the
view, regenerate them and review the diff:

    WHIRR_UPDATE_SNAPSHOTS=1 .venv/bin/pytest -p no:cacheprovider tests/unit/test_watch_layout.py

docs/watch.md shows ``80x24.txt`` verbatim (checked below): paste the new one there too.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from msgspec.structs import replace

from whirr.watch import Detail, JobRow, WatchState, WorkerRow, render_text
from whirr.watch.layout import plan, short_id, window

NOW = datetime(2026, 3, 1, 12, 30, 0, tzinfo=UTC)
SNAPSHOTS = Path(__file__).parent.parent / "fixtures" / "watch"
UPDATE = os.environ.get("WHIRR_UPDATE_SNAPSHOTS") == "1"
HELP = "q quit · ↑/↓ or j/k select a job · PgUp/PgDn page · g/G first/last"
POD = "trainer-deployment-7f9c8d6b5-xk2lp.default.svc.cluster.local-48213"
NODE = "gpu-node-17.research.example.org-9001"


def job(id: int, status: str, name: str | None = None, **kwargs: object) -> JobRow:
    fields: dict[str, object] = {
        "id": id,
        "name": name,
        "status": status,
        "attempt": 1,
        "worker_id": None,
        "command": ["python", "train.py", "--lr", f"0.{id}", "--epochs", "30"],
        "run_id": f"job-{id}",
        "created_at": NOW - timedelta(minutes=40 - id),
    }
    fields.update(kwargs)
    return JobRow(**fields)  # type: ignore[arg-type]


def worker(id: str, status: str, jobs: list[int], seen: float, gpus: list[int]) -> WorkerRow:
    host = id.rpartition("-")[0]
    return WorkerRow(
        id=id,
        hostname=host,
        status=status,
        job_ids=jobs,
        heartbeat_at=NOW - timedelta(seconds=seen),
        gpu_ids=gpus,
    )


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


FINISHED = ["completed", "failed", "completed", "timed_out", "completed", "cancelled"]
#: A busy queue: 4 running (one cancelling, one whose worker was lost), 4 queued and 14
#: finished jobs; 4 workers listed (hosts with long names) and 3 stopped ones.
BUSY = WatchState(
    source="project /home/ada/research/very/deep/folder/of/projects/proj",
    now=NOW,
    jobs=[
        job(21, "running", "sweep-lr-0.21", worker_id=POD, started_at=ago(754)),
        job(22, "running", "sweep-lr-0.22", worker_id=NODE, started_at=ago(3725)),
        job(
            23,
            "running",
            "baseline",
            worker_id="gpu0-77",
            started_at=ago(61),
            cancel_requested=True,
        ),
        job(
            24,
            "running",
            "lost-one",
            worker_id="laptop-31337",
            started_at=ago(900),
            lease_expires_at=ago(42),
        ),
        *(job(i, "queued", f"queued-{i}") for i in range(25, 29)),
        *(
            job(
                i,
                FINISHED[i % len(FINISHED)],
                f"sweep-lr-0.{i:02d}",
                worker_id=POD if i % 2 else NODE,
                started_at=ago(5000 - i * 100),
                finished_at=ago(4000 - i * 100),
                attempt=2 if i == 17 else 1,
            )
            for i in range(20, 6, -1)
        ),
    ],
    workers=[
        worker(POD, "busy", [21], 1, [0, 1]),
        worker(NODE, "busy", [22], 2, [0]),
        worker("gpu0-77", "idle", [], 3, [2]),
        worker("laptop-31337", "offline", [], 400, []),
        *(worker(f"old-host-{n}", "stopped", [], 600 + n, []) for n in range(3)),
    ],
    counts={"running": 4, "queued": 4, "completed": 40, "failed": 7, "timed_out": 2},
    selected=22,
    detail=Detail(
        job_id=22,
        log_lines=[
            f"epoch {i:2d}  loss {2.0 / (i + 1):.4f}  acc {1 - 1 / (i + 2):.3f}" for i in range(29)
        ]
        + ["warning: " + "a very long line that a narrow terminal cannot hold " * 4],
        metric="train/loss",
        values=[2.0 / (i + 1) for i in range(30)],
    ),
)


def compare(name: str, text: str) -> None:
    """``text`` against the snapshot ``name`` (written instead when regenerating)."""
    path = SNAPSHOTS / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}: regenerate with WHIRR_UPDATE_SNAPSHOTS=1"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"the frame differs from {path}:\n{text}"


def frame(state: WatchState, width: int, height: int, top: int = 0) -> str:
    return render_text(state, width, height=height, top=top, keys=True)


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40), (200, 60)])
def test_frames_at_common_sizes_match_their_snapshots(width: int, height: int) -> None:
    text = frame(BUSY, width, height)
    lines = text.splitlines()
    # The whole frame is on the screen: every row used, none longer than the width,
    # the selected job's panel closed and the key help on the last row.
    assert len(lines) == height
    assert max(len(line) for line in lines) <= width
    assert "Job #22 sweep-lr-0.22 · running" in text
    assert any(line.startswith("╰") for line in lines)
    assert lines[-1] == HELP[:width]
    compare(f"{width}x{height}.txt", text)


def test_an_80x24_frame_keeps_the_panel_and_help_on_screen_and_workers_on_one_line() -> None:
    lines = frame(BUSY, 80, 24).splitlines()
    workers = [line for line in lines if line.startswith("Workers")]
    assert workers == [next(line for line in lines if line.startswith("Workers 3/4 online"))]
    assert "3 stopped" in workers[0]
    # Stopped workers are counted, never listed.
    assert "old-host" not in "\n".join(lines)
    panel = next(i for i, line in enumerate(lines) if "Job #22" in line)
    assert "train/loss" in lines[panel + 1] and "(30 points)" in lines[panel + 1]
    assert "warning: a very long line" in "\n".join(lines[panel:])  # cut, not wrapped


def test_a_bigger_screen_lists_workers_in_a_table_without_the_stopped_ones() -> None:
    text = frame(BUSY, 120, 40)
    assert "Workers 3/4 online · 3 stopped" in text
    assert "old-host" not in text
    assert text.count("busy") == 2 and "offline" in text


def test_the_job_list_scrolls_to_keep_the_selection_on_screen() -> None:
    rows = plan(BUSY, 24, 10).job_rows
    assert rows is not None and rows < len(BUSY.jobs)
    index = len(BUSY.jobs) - 3
    chosen = BUSY.jobs[index]
    scrolled = replace(BUSY, selected=chosen.id)
    top = window(0, index, rows, len(BUSY.jobs))
    assert top == index - rows + 1  # scrolled as little as it takes
    text = frame(scrolled, 80, 24, top=top)
    marked = next(line for line in text.splitlines() if line.startswith("▶"))
    assert marked.split()[1] == str(chosen.id)
    assert text.splitlines()[1].startswith(f"Jobs {top + 1}-{top + rows}/{len(BUSY.jobs)}  4 ")
    assert text.splitlines()[-1] == HELP[:80]
    compare("80x24-scrolled.txt", text)


def test_window_moves_as_little_as_it_takes() -> None:
    assert window(0, 0, 5, 3) == 0  # everything fits
    assert window(0, 4, 5, 20) == 0
    assert window(0, 5, 5, 20) == 1  # one past the bottom: one row down
    assert window(10, 12, 5, 20) == 10  # still on screen: no move
    assert window(10, 3, 5, 20) == 3  # above the top: it becomes the top
    assert window(18, 19, 5, 20) == 15  # never past the end


def test_long_worker_ids_are_cut_to_a_capped_width_keeping_host_and_pid() -> None:
    assert short_id("gpu0-77") == "gpu0-77"
    assert short_id(NODE) == "gpu-node-17-9001"  # the domain goes
    assert short_id(POD) == "traine…xk2lp-48213"  # the pod's own suffix stays
    assert len(short_id(POD)) == 18
    assert short_id("10.0.0.5-123456789") == "10.0.0.5-123456789"
    assert short_id("10.20.30.40.50.60-1234") == "10.20.….50.60-1234"  # an address keeps its dots
    assert short_id("x" * 30) == "x" * 9 + "…" + "x" * 8
    assert short_id("w-" + "1" * 30).endswith("1") and len(short_id("w-" + "1" * 30)) == 18


def test_the_worker_column_stays_narrow_on_a_wide_screen() -> None:
    wide = replace(BUSY, workers=[worker("w" * 60 + "-1", "busy", [21], 1, [])])
    lines = render_text(wide, 140).splitlines()
    head = next(line for line in lines if "WORKER" in line and "COMMAND" in line)
    column = head.index("TIME") - head.index("WORKER")
    assert column <= 18 + 12  # the id's cap, the TIME column's right-justified width
    row = next(line for line in lines if line.split()[:2] == ["▶", "22"] or " 22 " in line)
    assert "gpu-node-17-9001" in row
    assert "python train.py --lr 0.22 --epochs 30" in row  # the command keeps the room


def test_an_ended_job_without_output_says_no_output_and_one_point_is_singular() -> None:
    ended = WatchState(
        source="p",
        now=NOW,
        jobs=[job(5, "completed", "quiet", finished_at=ago(3))],
        workers=[],
        counts={"completed": 1},
        selected=5,
        detail=Detail(job_id=5, metric="acc", values=[0.5]),
    )
    text = render_text(ended, 80)
    assert "(no output)" in text and "(no output yet)" not in text
    assert "(1 point)" in text and "(1 points)" not in text
    queued = WatchState(
        source="p",
        now=NOW,
        jobs=[job(6, "queued")],
        workers=[],
        counts={"queued": 1},
        selected=6,
        detail=Detail(job_id=6),
    )
    assert "(no output yet)" in render_text(queued, 80)


def test_a_printed_frame_has_no_key_help() -> None:
    text = render_text(BUSY, 100)
    assert "q quit" not in text
    assert len(text.splitlines()) > 24  # unbounded: every job, every listed worker
    assert all(f"sweep-lr-0.{i:02d}" in text for i in range(7, 21))


def test_the_docs_show_the_80x24_snapshot() -> None:
    docs = Path(__file__).parents[2] / "docs" / "watch.md"
    frame = (SNAPSHOTS / "80x24.txt").read_text(encoding="utf-8")
    assert "$ whirr watch\n" + frame + "```" in docs.read_text(encoding="utf-8")
