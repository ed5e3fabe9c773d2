"""`whirr compare`: exact values in table, CSV and JSON; --at, --goal; run id prefixes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from test_analytics_support import Builder, compare, invoke, new_project

from whirr.analytics.compare import default_goal
from whirr.analytics.errors import AnalyticsError
from whirr.project import Project
from whirr.services.errors import InvalidRequest, NotFound


def test_json_has_exact_values_config_and_best(swept: Project) -> None:
    code, out, err = invoke("compare", "job-1", "job-2", "job-3", "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["at"] == "last"
    runs = {r["id"]: r for r in data["runs"]}
    assert list(runs) == ["job-1", "job-2", "job-3"]
    assert runs["job-1"]["metrics"] == {"loss": 0.5, "acc": 0.5, "val_loss": None}
    assert runs["job-2"]["metrics"] == {"loss": 0.375, "acc": 0.625, "val_loss": None}
    assert runs["job-3"]["metrics"] == {"loss": 1.5, "acc": None, "val_loss": 1.25}
    assert runs["job-2"]["config"] == {"lr": 0.01, "bs": 32, "opt": "sgd"}
    assert runs["job-3"]["summary"] == {"best_loss": None}
    assert runs["job-1"]["duration_seconds"] == 90.5
    assert runs["job-2"]["duration_seconds"] == 120.25
    assert runs["job-3"]["status"] == "failed"
    assert runs["job-1"]["started_at"] == "2024-05-01T12:00:00.000000Z"
    assert data["differing_config"] == ["lr", "bs", "opt"]
    assert data["best"] == {
        "summary.best_loss": ["job-2"],
        "metrics.loss": ["job-2"],
        "metrics.acc": ["job-2"],
        "metrics.val_loss": ["job-3"],
    }
    assert data["goals"]["metrics.acc"] == "max"
    assert data["goals"]["metrics.loss"] == "min"


def test_csv_is_one_exact_row_per_run(swept: Project) -> None:
    code, out, _ = invoke("compare", "job-1", "job-2", "-m", "loss", "-o", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == ["job-1", "job-2"]
    assert rows[0]["metrics.loss"] == "0.5"
    assert rows[1]["metrics.loss"] == "0.375"
    assert rows[1]["config.lr"] == "0.01"
    assert rows[0]["config.bs"] == "32"
    assert rows[0]["duration_seconds"] == "90.5"
    assert rows[1]["summary.best_loss"] == "0.25"
    assert "metrics.acc" not in rows[0]


def test_table_marks_differences_and_best(swept: Project) -> None:
    code, out, _ = invoke("compare", "job-1", "job-2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["job-1", "job-2"]
    row = {line.split()[0]: line.split()[1:] for line in lines[1:] if line.strip()}
    assert row["config.lr"] == ["≠", "0.1", "0.01"]
    assert row["config.bs"] == ["32", "32"]  # same in both: no mark
    assert row["metrics.loss"] == ["(last)", "0.5", "0.375", "*"]
    assert row["metrics.acc"] == ["(last)", "0.5", "0.625", "*"]
    assert row["duration"] == ["1m30s", "2m00s"]
    # Differing config keys come before the identical ones.
    assert out.index("config.lr") < out.index("config.bs")
    assert "≠ config differs" in out


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("min", [0.5, 0.25, 1.5]),
        ("max", [1.0, 0.9, 2.0]),
        ("step=1", [0.75, 0.25, 1.5]),
        ("step=2", [0.5, 0.375, None]),
        ("last", [0.5, 0.375, 1.5]),
    ],
)
def test_at(swept: Project, at: str, expected: list[float | None]) -> None:
    comp = compare(swept, ["job-1", "job-2", "job-3"], ["loss"], at)
    (row,) = comp.section("metrics")
    assert row.values == expected


def test_goal_defaults_and_overrides(swept: Project) -> None:
    assert default_goal("val_loss") == "min"
    assert default_goal("top1_err") == "min"
    assert default_goal("MSE") == "min"
    assert default_goal("accuracy") == "max"
    assert default_goal("reward") == "max"
    comp = compare(swept, ["job-1", "job-2"], ["loss", "acc"], goals=["loss=max"])
    loss, acc = comp.section("metrics")
    assert loss.best == [True, False] and loss.goal == "max"
    assert acc.best == [False, True] and acc.goal == "max"
    comp = compare(swept, ["job-1", "job-2"], ["acc"], goals=["min"])
    assert comp.section("metrics")[0].best == [True, False]
    (summary,) = comp.section("summary")
    assert summary.best == [False, True] and summary.goal == "min"  # 0.25 < 0.5


def test_ties_are_all_best(tmp_path: Path) -> None:
    project, b = new_project(tmp_path / "p")
    b.run("a", metrics=[{"acc": 0.5}])
    b.run("b", metrics=[{"acc": 0.5}])
    b.run("c", metrics=[{"acc": 0.25}])
    comp = compare(project, ["a", "b", "c"])
    assert comp.section("metrics")[0].best == [True, True, False]


def test_prefixes_resolve_or_fail_clearly(swept: Project) -> None:
    comp = compare(swept, ["job-2", "loc", "ün"])
    assert [r.id for r in comp.runs] == ["job-2", "local-run", "ünï-run"]
    with pytest.raises(InvalidRequest, match="several runs: job-1, job-2, job-3"):
        compare(swept, ["job"])
    with pytest.raises(NotFound, match="'nope'"):
        compare(swept, ["job-1", "nope"])
    code, out, err = invoke("compare", "job-1", "jo")
    assert code == 1
    assert err.startswith("Error: 'jo' matches several runs")
    assert "Traceback" not in err + out


def test_exact_id_beats_longer_ids_with_that_prefix(tmp_path: Path) -> None:
    project, b = new_project(tmp_path / "p")
    for run_id in ("job-1", "job-10", "job-11"):
        b.run(run_id, metrics=[{"loss": 1.0}])
    assert [r.id for r in compare(project, ["job-1", "job-10"]).runs] == ["job-1", "job-10"]


def test_unknown_metric_and_bad_at(swept: Project) -> None:
    with pytest.raises(AnalyticsError, match=r"no compared run logged 'nope'.*loss, acc"):
        compare(swept, ["job-1", "job-2"], ["nope"])
    code, _, err = invoke("compare", "job-1", "--at", "median")
    assert code == 1 and "expected last, min, max or step=N" in err
    code, _, err = invoke("compare", "job-1", "--goal", "sideways")
    assert code == 1 and err.startswith("Error: --goal")


def test_running_empty_and_torn_runs(swept: Project) -> None:
    code, out, err = invoke("compare", "local-run", "empty", "ünï", "--json")
    assert code == 0, err
    runs = {r["id"]: r for r in json.loads(out)["runs"]}
    assert runs["local-run"]["metrics"]["loss"] == 0.6  # running: read from the JSONL
    assert runs["local-run"]["duration_seconds"] is None
    assert runs["empty"]["metrics"] == {"loss": None, "acc": None}
    assert runs["ünï-run"]["name"] == "ünïcødé ✓"
    assert runs["ünï-run"]["metrics"] == {"loss": 0.5, "acc": 0.9}  # the torn line is skipped


def test_runs_without_any_metrics(tmp_path: Path) -> None:
    project, b = new_project(tmp_path / "p")
    b.run("a", config={"lr": 1}, summary={"score": 3})
    b.run("b", config={"lr": 2}, summary={"score": 4})
    comp = compare(project, ["a", "b"])
    assert comp.section("metrics") == []
    assert comp.section("summary")[0].best == [False, True]
    assert comp.section("config")[0].values == [1, 2]


def test_nested_config_is_flattened(tmp_path: Path) -> None:
    project, b = new_project(tmp_path / "p")
    b.run("a", config={"opt": {"name": "adam", "lr": 0.1}})
    b.run("b", config={"opt": {"name": "adam", "lr": 0.2}, "extra": True})
    rows = {r.key: r for r in compare(project, ["a", "b"]).section("config")}
    assert rows["opt.lr"].differs and rows["opt.lr"].values == [0.1, 0.2]
    assert not rows["opt.name"].differs
    assert rows["extra"].differs and rows["extra"].values == [None, True]


def test_builder_is_importable() -> None:
    assert Builder  # the support module is shared with the other analytics tests
