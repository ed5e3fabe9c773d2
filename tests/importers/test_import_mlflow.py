"""``whirr import mlflow`` on stores written by the real MLflow (mlflow-skinny): a ``file:``
store and an ``sqlite:`` database, each with a finished run (params, stepped metrics
with explicit timestamps, a tag, an artifact), a failed one (a metric logged twice at
MLflow's default step 0, once NaN) and a deleted one."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_runner import run_cli
from import_sources import (
    event_count,
    import_into,
    metric_rows,
    new_project,
    runs_by_name,
    write_mlflow,
)

T0 = 1_700_000_000_000  # the first loss point's timestamp (ms), as the script logs it


@pytest.fixture(scope="module", params=["file", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(kind, uri, what the script reported) for a store written once per kind."""
    base = tmp_path_factory.mktemp(f"mlflow-{request.param}")
    if request.param == "file":
        uri = (base / "mlruns").as_uri()
    else:
        uri = f"sqlite:///{base / 'mlflow.db'}"
    return request.param, uri, write_mlflow(uri, base / "artifacts", cwd=base)


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def test_runs_come_in_with_their_config_metrics_tags_times_and_artifacts(
    store: Any, tmp_path: Path
) -> None:
    _, uri, written = store
    project = new_project(tmp_path / "proj")
    done = import_into(project, "mlflow", uri)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Imported from mlflow: 2 new, 0 already imported"
    assert "[1] mlflow-" in done.stderr and "[2] mlflow-" in done.stderr  # progress

    runs = runs_by_name(project)
    assert set(runs) == {"good", "broken"}  # the deleted run stays out
    good, broken = runs["good"], runs["broken"]
    assert good["id"] == f"mlflow-{written['good']}"
    assert good["status"] == "completed" and broken["status"] == "failed"
    assert good["config"] == {"lr": 0.01, "layers": 4, "optimizer": "adam"}
    assert good["tags"] == ["import:mlflow", "experiment:baseline", "team=vision"]
    start, end = written["times"]["good"]
    assert (good["started_at"], good["finished_at"]) == (_iso_ms(start), _iso_ms(end))

    rows = metric_rows(good)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["loss"] for r in rows] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert [r.get("acc") for r in rows] == [0.0, None, 0.2, None, 0.4]
    assert rows[0]["_timestamp"] == _iso_ms(T0) and rows[4]["_timestamp"] == _iso_ms(T0 + 4000)
    # Logged twice at step 0: two rows, the NaN as null, nothing merged away.
    assert [(r["step"], r["grad_norm"]) for r in metric_rows(broken)] == [(0, 3.0), (0, None)]

    copied = Path(good["run_dir"]) / "artifacts" / "ckpt" / "weights.bin"
    assert copied.read_bytes() == bytes(range(256)) * 8
    assert good["artifacts"][0]["path"] == "ckpt/weights.bin"
    assert good["artifacts"][0]["sha256"] == hashlib.sha256(copied.read_bytes()).hexdigest()

    # Ordinary runs: compare and sql read them as any other.
    compared = run_cli("compare", good["id"], broken["id"], "-o", "json", cwd=project, check=True)
    assert json.loads(compared.stdout)["differing_config"] == ["layers", "lr", "optimizer"]
    query = f"SELECT min(loss) AS best FROM metrics WHERE run_id = '{good['id']}'"
    assert json.loads(run_cli("sql", query, "--json", cwd=project, check=True).stdout) == [
        {"best": 0.2}
    ]


def test_dry_run_writes_nothing_and_importing_twice_adds_nothing(
    store: Any, tmp_path: Path
) -> None:
    _, uri, written = store
    project = new_project(tmp_path / "proj")
    events = event_count(project)
    dry = import_into(project, "mlflow", uri, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    summary = json.loads(dry.stdout)
    assert (summary["source"], summary["dry_run"], summary["new"]) == ("mlflow", True, 2)
    assert {r["source_id"] for r in summary["runs"]} == {
        f"mlflow:{written['good']}",
        f"mlflow:{written['broken']}",
    }
    assert event_count(project) == events
    assert list((project / ".whirr" / "runs").iterdir()) == []

    assert import_into(project, "mlflow", uri).returncode == 0
    events = event_count(project)
    again = import_into(project, "mlflow", uri)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "Imported from mlflow: 0 new, 2 already imported"
    assert event_count(project) == events


def test_a_path_that_is_no_mlflow_store_is_one_error_line(tmp_path: Path) -> None:
    project = new_project(tmp_path / "proj")
    (tmp_path / "notes.db").write_text("not sqlite")
    for target, says in [
        (str(tmp_path / "notes.db"), "is not an MLflow database"),
        (str(tmp_path / "empty"), "no MLflow store"),
    ]:
        done = import_into(project, "mlflow", target)
        assert done.returncode == 1
        assert done.stderr.startswith("Error: ") and says in done.stderr
        assert "Traceback" not in done.stderr
