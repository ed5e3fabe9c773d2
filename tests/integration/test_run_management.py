"""Run and job management in a project (issue 19 item 1), through the real CLI, a real
worker and scripts that import whirr: rename, tag, untag, note, archive, delete, clean,
and the Python API's config/tags/note after ``init``; ``rebuild`` gives the same views."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

from cli_runner import WHIRR, run_cli

from whirr.project import Project

# A script whose run changes its config, tags and note after init (a job's or a direct run).
SCRIPT = """\
import whirr
run = whirr.init(name="orig", config={"a": 1}, tags=["t0"], system_metrics=False,
                 capture_git=False, capture_pip=False)
run.config["b"] = 2
run.config.update({"c": 3})
run.add_tags("t1", "t2")
run.remove_tags("t0")
run.note("first")
run.note("second", append=True)
run.log({"loss": 1.0}, step=0)
run.finish()
print(run.run_id)
"""

# A direct run that stays running until the file "go" appears (bounded: 60 s).
WAITING = """\
import pathlib, time, whirr
run = whirr.init(name="busy", system_metrics=False, capture_git=False, capture_pip=False)
print(run.run_id, flush=True)
deadline = time.monotonic() + 60
while not pathlib.Path("go").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
run.finish()
"""


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=project.root)


def ok(project: Project, *args: str) -> str:
    done = cli(project, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def as_json(project: Project, *args: str) -> Any:
    """The command's --json answer (the flag goes before a ``--`` command line)."""
    cut = args.index("--") if "--" in args else len(args)
    return json.loads(ok(project, *args[:cut], "--json", *args[cut:]))


def listed(project: Project, *flags: str) -> list[str]:
    return [r["id"] for r in as_json(project, "runs", *flags)["runs"]]


def one_error(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.startswith("Error: ") and len(done.stderr.strip().splitlines()) == 1
    assert text in done.stderr and "Traceback" not in done.stderr


def test_a_direct_run_records_config_tags_and_note_set_after_init(project: Project) -> None:
    (project.root / "train.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=project.root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[-1]
    run = as_json(project, "show", run_id)
    assert run["config"] == {"a": 1, "b": 2, "c": 3}
    assert run["tags"] == ["t1", "t2"]
    assert run["notes"] == "first\n\nsecond"
    saved = json.loads((project.root / ".whirr" / "runs" / run_id / "config.json").read_text())
    assert saved == {"a": 1, "b": 2, "c": 3}
    ok(project, "rebuild")
    assert as_json(project, "show", run_id) == run | {"last_system": run["last_system"]}


def test_a_job_records_config_set_after_init(project: Project) -> None:
    (project.root / "train.py").write_text(SCRIPT)
    job = as_json(project, "submit", "-n", "jobname", "--", sys.executable, "train.py")
    ok(project, "worker", "--exit-when-empty", "-q")
    run = as_json(project, "show", str(job["id"]))
    assert (run["id"], run["status"]) == (f"job-{job['id']}", "completed")
    assert run["config"] == {"a": 1, "b": 2, "c": 3}
    assert run["tags"] == ["t1", "t2"] and run["notes"] == "first\n\nsecond"


def test_rename_tag_untag_note_archive_delete_and_rebuild(project: Project) -> None:
    for _ in range(3):
        as_json(project, "submit", "-t", "keep", "--", "true")
    ok(project, "worker", "--exit-when-empty", "-q")
    assert listed(project) == ["job-3", "job-2", "job-1"]

    assert "renamed to best" in ok(project, "runs", "rename", "2", "best")
    assert as_json(project, "runs", "tag", "job-2", "paper", "keep", "x")["tags"] == [
        "keep",
        "paper",
        "x",
    ]
    assert as_json(project, "runs", "untag", "job-2", "x", "absent")["tags"] == ["keep", "paper"]
    ok(project, "runs", "note", "job-2", "lr too high")
    ok(project, "runs", "note", "job-2", "--append", "rerun with lr/3")
    shown = ok(project, "show", "job-2")
    assert "Name:     best" in shown and "lr too high" in shown and "rerun with lr/3" in shown

    ok(project, "runs", "archive", "job-1", "job-3")
    assert listed(project) == ["job-2"]
    assert listed(project, "--archived") == ["job-3", "job-1"]
    assert listed(project, "--all") == ["job-3", "job-2", "job-1"]
    assert "(archived)" in ok(project, "runs", "--all")
    assert listed(project, "-t", "keep") == ["job-2"]  # filters still apply
    hidden = ok(project, "runs", "-t", "nosuch")
    assert "archived runs are hidden" not in hidden  # none of them is tagged so
    ok(project, "runs", "archive", "job-2")
    assert "archived runs are hidden: whirr runs --archived" in ok(project, "runs")
    ok(project, "runs", "unarchive", "job-2", "job-3")
    assert listed(project) == ["job-3", "job-2"]

    # Delete: asks first (no answer: nothing happens), then removes files and the run.
    refused = subprocess.run(
        [*WHIRR, "runs", "delete", "job-3"],
        cwd=project.root,
        input="n\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and (project.root / ".whirr/runs/job-3").is_dir()
    assert "Deleted run job-3" in ok(project, "runs", "delete", "job-3", "--yes")
    assert not (project.root / ".whirr/runs/job-3").exists()
    assert listed(project, "--all") == ["job-2", "job-1"]
    assert [j["id"] for j in as_json(project, "status", "--all")["jobs"]] == [2, 1]
    one_error(cli(project, "show", "job-3"), "job #3 has no run")
    one_error(cli(project, "runs", "delete", "job-3", "--yes"), "job #3 has no run")
    sql = ok(project, "sql", "SELECT id, archived FROM runs ORDER BY id", "-o", "csv")
    assert sql.splitlines() == ["id,archived", "job-1,true", "job-2,false"]

    before = {flags: listed(project, *flags) for flags in [(), ("--all",), ("--archived",)]}
    shown_before = as_json(project, "show", "job-2")
    ok(project, "rebuild")
    assert {flags: listed(project, *flags) for flags in before} == before
    assert as_json(project, "show", "job-2")["notes"] == shown_before["notes"]
    assert as_json(project, "show", "job-2")["name"] == "best"

    one_error(cli(project, "runs", "rename", "job-2", " "), "not empty")
    one_error(cli(project, "runs", "rename", "nope", "x"), "no run matches 'nope'")


def test_delete_is_refused_while_the_run_is_running(project: Project) -> None:
    (project.root / "busy.py").write_text(WAITING)
    with subprocess.Popen(
        [sys.executable, "busy.py"], cwd=project.root, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            run_id = proc.stdout.readline().split()[0]
            one_error(cli(project, "runs", "delete", run_id, "--yes"), "still running")
            assert (project.root / ".whirr/runs" / run_id).is_dir()
        finally:
            (project.root / "go").write_text("")  # the script ends within 60 s either way
        assert proc.wait(timeout=60) == 0
    ok(project, "runs", "delete", run_id, "--yes")
    assert run_id not in listed(project, "--all")


def test_clean_drops_ended_jobs_from_the_queue_views(project: Project) -> None:
    ok(project, "submit", "--", "true")
    ok(project, "submit", "--", "false")
    ok(project, "worker", "--exit-when-empty", "-q")
    for _ in range(3):
        ok(project, "submit", "--", "true")
    assert "Cancelled 3" in ok(project, "cancel", "--all-queued")
    ok(project, "submit", "--", "true")  # stays queued: never cleaned
    assert as_json(project, "clean", "--older-than", "1h")["count"] == 0
    assert as_json(project, "clean", "-s", "cancelled")["cleaned"] == [3, 4, 5]
    footer = ok(project, "status").strip().splitlines()[-1]
    assert "cancelled" not in footer and "1 completed" in footer and "1 failed" in footer
    assert as_json(project, "clean")["cleaned"] == [1, 2]
    assert [j["id"] for j in as_json(project, "status", "--all")["jobs"]] == [6]
    assert as_json(project, "status", "2")["status"] == "failed"  # still found by id
    assert listed(project) == ["job-2", "job-1"]  # the runs stay
    ok(project, "rebuild")
    assert [j["id"] for j in as_json(project, "status", "--all")["jobs"]] == [6]
    bad = cli(project, "clean", "--older-than", "soon")  # a usage error, as submit --timeout
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_show_says_when_the_run_files_were_removed_by_hand(project: Project) -> None:
    ok(project, "submit", "--", "true")
    ok(project, "worker", "--exit-when-empty", "-q")
    shutil.rmtree(project.root / ".whirr/runs/job-1")
    shown = cli(project, "show", "job-1")
    assert shown.returncode == 0
    assert "the run's files are missing from" in shown.stdout
    data = as_json(project, "show", "job-1")
    assert any("missing" in w for w in data["files_location"]["warnings"])


# A direct run whose process dies without recording an end (a crash, a kill -9).
CRASHING = """\
import os, whirr
run = whirr.init(name="crashing", system_metrics=False, capture_git=False, capture_pip=False)
print(run.run_id, flush=True)
os._exit(3)
"""

RESUMING = """\
import sys, whirr
try:
    whirr.init(resume=sys.argv[1], system_metrics=False, capture_git=False, capture_pip=False)
except ValueError as exc:
    print(exc)
"""


def test_a_crashed_direct_run_can_be_deleted_and_its_id_stays_deleted(project: Project) -> None:
    (project.root / "crash.py").write_text(CRASHING)
    done = subprocess.run(
        [sys.executable, "crash.py"], cwd=project.root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    run_id = done.stdout.split()[0]
    assert as_json(project, "show", run_id)["status"] == "crashed"
    assert "Deleted run" in ok(project, "runs", "delete", run_id, "--yes")
    assert not (project.root / ".whirr/runs" / run_id).exists()

    # Resuming it is refused with a reason, even with its directory back (restored
    # from a backup, say), and nothing is recorded or created for it.
    (project.root / "resume.py").write_text(RESUMING)
    for with_dir in (False, True):
        if with_dir:
            (project.root / ".whirr/runs" / run_id).mkdir()
        done = subprocess.run(
            [sys.executable, "resume.py", run_id],
            cwd=project.root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert f"cannot resume {run_id!r}: it was deleted" in done.stdout, done.stdout
    assert sorted(p.name for p in (project.root / ".whirr/runs" / run_id).iterdir()) == []
    ok(project, "rebuild")
    assert run_id not in listed(project, "--all")
