"""``whirr import wandb`` on offline runs written by the real wandb (WANDB_MODE=offline: no
network, no account): config (nested), history with its steps, summary, tags, and a run
that ended with a non-zero exit code."""

from __future__ import annotations

from pathlib import Path

import pytest
from import_sources import (
    event_count,
    import_into,
    metric_rows,
    new_project,
    runs_by_name,
    write_wandb,
)


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("wb")
    return path, write_wandb(path)


def test_offline_runs_come_in_with_config_history_and_summary(
    wandb_dir: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    directory, written = wandb_dir
    project = new_project(tmp_path / "proj")
    done = import_into(project, "wandb", str(directory / "wandb"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Imported from wandb: 2 new, 0 already imported"

    runs = runs_by_name(project)
    wide, crashy = runs["wide"], runs["crashy"]
    assert wide["id"] == f"wandb-{written['wide']}"
    assert wide["config"] == {"lr": 0.1, "model": {"depth": 3}}
    assert wide["tags"] == ["import:wandb", "project:cifar", "resnet"]
    assert wide["summary"]["best_acc"] == 0.9 and wide["summary"]["loss"] == 0.05
    assert wide["status"] == "completed"
    rows = metric_rows(wide)
    assert [(r["step"], r["loss"]) for r in rows] == [(0, 1), (1, 0.5), (2, 1 / 3), (10, 0.05)]
    assert [r.get("acc") for r in rows] == [0, 0.1, 0.2, None]
    assert wide["started_at"] <= rows[0]["_timestamp"] <= wide["finished_at"]

    assert crashy["status"] == "failed" and crashy["error"] == "exited with code 3"
    assert [r["loss"] for r in metric_rows(crashy)] == [9.0]

    events = event_count(project)
    again = import_into(project, "wandb", str(directory))  # the folder above wandb/
    assert again.stdout.strip() == "Imported from wandb: 0 new, 2 already imported"
    assert event_count(project) == events


def test_a_run_file_cut_short_is_a_crashed_run_with_what_it_holds(
    wandb_dir: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    directory, written = wandb_dir
    (source,) = (directory / "wandb").glob(f"offline-run-*-{written['wide']}/run-*.wandb")
    torn = tmp_path / "torn" / "offline-run-x" / source.name
    torn.parent.mkdir(parents=True)
    data = source.read_bytes()
    torn.write_bytes(data[: len(data) * 2 // 3])  # the process killed before its exit record
    project = new_project(tmp_path / "proj")
    done = import_into(project, "wandb", str(tmp_path / "torn"))
    assert done.returncode == 0, done.stderr
    run = runs_by_name(project)["wide"]
    assert run["status"] == "crashed" and run["error"] == "the W&B run recorded no exit"
    assert run["config"] == {"lr": 0.1, "model": {"depth": 3}}
