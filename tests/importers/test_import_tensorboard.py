"""``whirr import tensorboard`` on event files written by the real tensorboardX: one run
of ``simple_value`` scalars (tensorboardX, PyTorch, TF1) and one of scalar tensors of the
``scalars`` plugin (TF2's shape), with explicit steps and wall times."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_runner import WHIRR
from import_sources import import_into, metric_rows, new_project, runs_by_name, write_tensorboard


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tb") / "logs"
    path.mkdir()
    write_tensorboard(path)
    return path


def _steps(run: dict[str, Any], key: str) -> list[tuple[int, float]]:
    return [(r["step"], r[key]) for r in metric_rows(run) if r.get(key) is not None]


def test_each_folder_of_event_files_is_a_run_with_its_scalars(logdir: Path, tmp_path: Path) -> None:
    project = new_project(tmp_path / "proj")
    done = import_into(project, "tensorboard", str(logdir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Imported from tensorboard: 2 new, 0 already imported"

    runs = runs_by_name(project)
    assert set(runs) == {"seed1", "seed2"}
    seed1, seed2 = runs["seed1"], runs["seed2"]
    assert seed1["tags"] == ["import:tensorboard", "logdir:seed1"]
    assert seed1["status"] == "completed"
    assert _steps(seed1, "train/loss") == [(0, 1.0), (1, 0.5), (2, 0.33333334), (3, 0.25)]
    assert _steps(seed1, "val/acc") == [(3, 0.75)]  # same step as a loss: the same row
    assert len(metric_rows(seed1)) == 4
    assert "notes" not in {k for r in metric_rows(seed1) for k in r}  # text: not a scalar
    assert metric_rows(seed1)[1]["_timestamp"] == "2020-09-13T12:26:41Z"  # wall time 1.6e9+1
    assert (seed1["started_at"], seed1["finished_at"]) == (
        "2020-09-13T12:26:40Z",
        "2020-09-13T12:26:50Z",
    )
    # Tensor scalars: a float_val list and a packed double.
    assert _steps(seed2, "train/loss") == [(0, 2.0), (1, 1.0), (2, 0.0)]
    assert _steps(seed2, "val/acc") == [(2, 0.5)]


def test_the_same_runs_moved_elsewhere_are_not_imported_again(logdir: Path, tmp_path: Path) -> None:
    project = new_project(tmp_path / "proj")
    assert import_into(project, "tensorboard", str(logdir)).returncode == 0
    moved = tmp_path / "archive" / "old-logs"
    shutil.copytree(logdir, moved)
    # From the moved copy's parent: the runs are found by their files, not their paths.
    again = import_into(project, "tensorboard", str(moved.parent))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "Imported from tensorboard: 0 new, 2 already imported"


def test_a_folder_without_event_files_is_one_error_line(tmp_path: Path) -> None:
    project = new_project(tmp_path / "proj")
    (tmp_path / "empty").mkdir()
    done = import_into(project, "tensorboard", str(tmp_path / "empty"))
    assert done.returncode == 1
    assert done.stderr.startswith("Error: no TensorBoard event files")


def test_a_torn_event_file_gives_the_records_before_the_tear(logdir: Path, tmp_path: Path) -> None:
    torn = tmp_path / "torn"
    shutil.copytree(logdir, torn)
    (event_file,) = (torn / "seed1").glob("events.out.tfevents.*")
    data = event_file.read_bytes()
    event_file.write_bytes(data[: len(data) * 2 // 3])  # a writer killed mid-record
    project = new_project(tmp_path / "proj")
    done = import_into(project, "tensorboard", str(torn))
    assert done.returncode == 0, done.stderr
    losses = _steps(runs_by_name(project)["seed1"], "train/loss")
    full = [(0, 1.0), (1, 0.5), (2, 0.33333334), (3, 0.25)]
    assert losses and losses == full[: len(losses)]


def test_two_imports_at_once_add_each_run_once(logdir: Path, tmp_path: Path) -> None:
    project = new_project(tmp_path / "proj")
    procs = [
        subprocess.Popen(
            [*WHIRR, "import", "tensorboard", str(logdir), "--json"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert sum(json.loads(out)["new"] for out, _ in outs) == 2
    assert set(runs_by_name(project)) == {"seed1", "seed2"}
    # One folder per run, no scratch folder left behind.
    assert sorted(p.name for p in (project / ".whirr" / "runs").iterdir()) == sorted(
        r["id"] for r in runs_by_name(project).values()
    )
