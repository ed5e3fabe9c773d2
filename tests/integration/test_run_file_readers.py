"""The readers of a run's metrics (issue 18): a row longer than any read window still
counts, a damaged line in the middle is reported with its line number (not silently
skipped), and ``compare``/``export`` show a crashed direct run as ``crashed``, as
``runs``/``show`` do. Real files, the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from cli_runner import run_cli

from whirr.project import Project
from whirr.services.run_files import SkippedLine, read_metric_rows, tail_rows


def direct_run(project: Project, body: str) -> str:
    """Run a tracked script in the project; its run id (printed first by the script)."""
    script = "import whirr\nrun = whirr.init(name='r')\nprint(run.run_id, flush=True)\n" + body
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=project.root, capture_output=True, text=True
    )
    return proc.stdout.split()[0]


def show_json(project: Project, run_id: str) -> dict:
    result = run_cli("show", "--json", run_id, cwd=project.root, check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("small_rows", [0, 1, 2000])
def test_a_row_over_64_kib_still_counts_in_show(project: Project, small_rows: int) -> None:
    run_id = direct_run(
        project,
        f"for i in range({small_rows}):\n    run.log({{'a': i}}, step=i)\n"
        "run.log({'blob': 'x' * 200_000}, step=99999)\nrun.finish()\n",
    )
    shown = show_json(project, run_id)
    assert shown["metrics_rows"] == small_rows + 1
    assert shown["last_metrics"]["step"] == 99999


def test_a_damaged_middle_line_is_reported_with_its_line_number(project: Project) -> None:
    run_id = direct_run(
        project, "for i in range(5):\n    run.log({'a': i}, step=i)\nrun.finish()\n"
    )
    path = project.run_dir(run_id) / "metrics.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"_idx":2,"a": garbage\n'
    path.write_bytes(b"".join(lines))
    result = run_cli("show", run_id, cwd=project.root, check=True)
    assert "Warning: metrics.jsonl of run" in result.stderr
    assert "line 3 is not valid JSON" in result.stderr, result.stderr
    with pytest.warns(SkippedLine, match="line 3 "):
        assert [r["a"] for r in tail_rows(project.runs_dir, run_id, "metrics.jsonl", 10)] == [
            0,
            1,
            3,
            4,
        ]
    with pytest.warns(SkippedLine, match="line 3 "):
        assert len(read_metric_rows(project.runs_dir, run_id, 0, 100)) == 4


def test_the_line_number_counts_lines_before_the_tail_window(project: Project) -> None:
    run_id = direct_run(
        project, "for i in range(3000):\n    run.log({'a': i}, step=i)\nrun.finish()\n"
    )
    path = project.run_dir(run_id) / "metrics.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2990] = b"not json at all\n"
    path.write_bytes(b"".join(lines))
    with pytest.warns(SkippedLine, match="line 2991 "):
        rows = tail_rows(project.runs_dir, run_id, "metrics.jsonl", 20)
    assert len(rows) == 19


def test_compare_and_export_show_a_crashed_direct_run_as_crashed(project: Project) -> None:
    run_id = direct_run(project, f"import os\nos.kill(os.getpid(), {int(signal.SIGKILL)})\n")
    runs = json.loads(run_cli("runs", "--json", cwd=project.root, check=True).stdout)["runs"]
    assert [r["status"] for r in runs if r["id"] == run_id] == ["crashed"]
    compared = json.loads(run_cli("compare", run_id, "--json", cwd=project.root, check=True).stdout)
    assert "crashed" in json.dumps(compared) and '"running"' not in json.dumps(compared)
    exported = run_cli("export", run_id, "-f", "json", cwd=project.root, check=True)
    assert [r["status"] for r in json.loads(exported.stdout)] == ["crashed"]
    assert os.environ.get("WHIRR_SERVER_URL") is None  # the local facade was the one tested
