"""``whirr watch`` over a real project: the view follows new events, files and keys."""

from __future__ import annotations

import json
from typing import Any

from cli_runner import run_cli

from whirr.facade.local import StoreSettings, StoreWhirr
from whirr.project import Project
from whirr.services import Jobs, Workers
from whirr.services.runs import Runs
from whirr.watch import render_text
from whirr.watch.app import Watcher
from whirr.watch.sources import WhirrSource


def watcher_for(project: Project, store: Any, **kwargs: Any) -> Watcher:
    settings = StoreSettings(
        runs_dir=project.runs_dir, worker_timeout=project.config.heartbeat_timeout
    )
    whirr = StoreWhirr(store, settings, label="proj", owns_store=False)
    return Watcher(WhirrSource(whirr, **kwargs))


def test_view_updates_on_a_new_event(project: Project, store: Any) -> None:
    watcher = watcher_for(project, store)
    assert watcher.state.jobs == []
    assert not watcher.poll()  # nothing happened: no redraw

    job = Jobs(store).submit(["python", "train.py"], str(project.root), name="first", check=False)
    assert watcher.poll()
    assert [(j.id, j.status) for j in watcher.state.jobs] == [(job.id, "queued")]
    assert watcher.state.selected == job.id
    assert "first" in render_text(watcher.state)

    Workers(store).register("w1", "box")
    Jobs(store).claim("w1", 60)
    assert watcher.poll()
    text = render_text(watcher.state, width=100)
    assert next(line for line in text.splitlines() if "first" in line).split()[3:6] == [
        "running",
        "1",
        "w1",
    ]
    assert "Workers 1/1 online" in text


def test_selected_job_shows_its_log_tail_and_metric_sparkline(project: Project, store: Any) -> None:
    jobs = Jobs(store)
    first = jobs.submit(["a"], str(project.root), name="a", check=False)
    second = jobs.submit(["b"], str(project.root), name="b", check=False)
    run_dir = project.runs_dir / second.run_id
    run_dir.mkdir(parents=True)
    Runs(store).start(second.run_id, str(run_dir), job_id=second.id)
    (run_dir / "output.log").write_text("".join(f"line {i}\n" for i in range(30)))
    with (run_dir / "metrics.jsonl").open("w") as out:
        for i, loss in enumerate([4.0, 3.0, 2.0, 1.0]):
            out.write(json.dumps({"_idx": i, "_timestamp": "t", "step": i, "loss": loss}) + "\n")
    watcher = watcher_for(project, store)
    assert watcher.selected == first.id  # no job runs: the first listed
    assert watcher.handle("j")  # down
    assert watcher.selected == second.id
    text = render_text(watcher.state, width=100, log_lines=5)
    assert "Job #2 b · queued" in text
    assert "loss █▆▃▁  last 1  min 1  max 4  (4 points)" in text
    assert "line 29" in text and "line 25" in text and "line 24" not in text
    assert watcher.handle("\x1b[A")  # up arrow
    assert watcher.selected == first.id
    assert not watcher.handle("q")


def test_a_named_metric_is_charted(project: Project, store: Any) -> None:
    job = Jobs(store).submit(["a"], str(project.root), check=False)
    run_dir = project.runs_dir / job.run_id
    run_dir.mkdir(parents=True)
    Runs(store).start(job.run_id, str(run_dir), job_id=job.id)
    (run_dir / "metrics.jsonl").write_text(
        '{"_idx":0,"loss":1,"acc":0.1}\n{"_idx":1,"loss":0.5,"acc":0.9}\n{"_idx":2,"lo'
    )
    watcher = watcher_for(project, store, metric="acc")
    detail = watcher.state.detail
    assert detail is not None and (detail.metric, detail.values) == ("acc", [0.1, 0.9])


def test_watch_once_prints_a_frame(project: Project, store: Any) -> None:
    Jobs(store).submit(["python", "x.py"], str(project.root), name="solo", check=False)
    result = run_cli("watch", "--once", cwd=project.root, env={"COLUMNS": "100"}, check=True)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("whirr watch  project …") and lines[0].endswith(
        project.root.name + "  ·  " + lines[0][-8:]
    )
    assert lines[1] == "Jobs  1 queued"
    assert "solo" in result.stdout and "Job #1 solo · queued" in result.stdout
    # A printed frame is not interactive: no key help (issue 21).
    assert "q quit" not in result.stdout and lines[-1].startswith("╰")


def test_a_long_log_is_read_from_its_tail_then_followed(project: Project, store: Any) -> None:
    job = Jobs(store).submit(["a"], str(project.root), name="chatty", check=False)
    run_dir = project.runs_dir / job.run_id
    run_dir.mkdir(parents=True)
    log = run_dir / "output.log"
    log.write_text("".join(f"line {i:06d}\n" for i in range(50_000)))  # 600 kB
    watcher = watcher_for(project, store)
    source = watcher.source
    detail = watcher.state.detail
    assert detail is not None
    # Only the tail was read, and the line the tail cut in two is not shown.
    assert detail.log_lines[-1] == "line 049999"
    assert len(detail.log_lines) < 10_000 and "line 000000" not in detail.log_lines
    assert all(line.startswith("line ") and len(line) == 11 for line in detail.log_lines)
    output = source._output[job.id]
    assert output.offset == log.stat().st_size
    with log.open("a") as out:
        out.write("line 050000\nhalf")
    detail = watcher.refresh().detail
    assert detail is not None and detail.log_lines[-2:] == ["line 050000", "half"]
    assert output.offset == log.stat().st_size  # read on from where it was, not again
    with log.open("a") as out:
        out.write(" done\n")
    detail = watcher.refresh().detail
    assert detail is not None and detail.log_lines[-2:] == ["line 050000", "half done"]


def test_watch_once_takes_a_job_ref(project: Project, store: Any) -> None:
    for name in ("one", "two"):
        Jobs(store).submit(["python", "x.py"], str(project.root), name=name, check=False)
    result = run_cli(
        "watch", "--once", "-j", "job-2", cwd=project.root, env={"COLUMNS": "100"}, check=True
    )
    assert "Job #2 two · queued" in result.stdout


def test_moving_past_the_last_listed_job_lists_older_finished_ones(
    project: Project, store: Any
) -> None:
    jobs = Jobs(store)
    for n in range(30):
        jobs.submit(["python", "x.py"], str(project.root), name=f"j{n}", check=False)
    jobs.cancel_all_queued()
    watcher = watcher_for(project, store)  # lists the newest 10 finished jobs at first
    assert [j.id for j in watcher.state.jobs] == list(range(30, 20, -1))
    for _ in range(13):
        assert watcher.handle("j")
    assert watcher.selected == 17  # the 14th row: past the ten first listed
    assert len(watcher.state.jobs) == 30
    assert watcher.handle("G")  # the last
    assert watcher.selected == 1
    watcher.frame(80, 24, 10)  # a drawing sets the page to the rows on screen, less one
    assert watcher.page == 15 - 1 and watcher.top == 15
    assert watcher.handle("\x1b[5~")  # PgUp
    assert watcher.selected == 15
    assert watcher.handle("g")
    assert watcher.selected == 30
