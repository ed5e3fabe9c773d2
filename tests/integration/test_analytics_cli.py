"""The real `whirr` CLI in a subprocess: compare, export, sql, runs --where."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

# The project builder is shared with the unit tests of analytics.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_analytics_support import new_project, sweep

from whirr.project import Project

WHIRR = [sys.executable, "-m", "whirr.cli.main"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project, builder = new_project(tmp_path_factory.mktemp("analytics") / "proj")
    sweep(builder)
    return project


def whirr(project: Project, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*WHIRR, *args], cwd=project.root, capture_output=True, text=True, input=stdin, timeout=120
    )


def test_compare_csv(swept: Project) -> None:
    result = whirr(swept, "compare", "job-1", "job-2", "-m", "loss", "--at", "min", "-o", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["id"], r["metrics.loss"]) for r in rows] == [("job-1", "0.5"), ("job-2", "0.25")]


def test_compare_unknown_run_is_an_error_not_a_traceback(swept: Project) -> None:
    result = whirr(swept, "compare", "job-1", "zzz")
    assert result.returncode == 1
    assert result.stderr == "Error: no run matches 'zzz' (see `whirr runs`)\n"


def test_export_parquet_to_a_pipe(swept: Project, tmp_path: Path) -> None:
    result = subprocess.run(
        [*WHIRR, "export", "--metrics", "-f", "parquet"],
        cwd=swept.root,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout[:4] == b"PAR1"
    out = tmp_path / "m.parquet"
    out.write_bytes(result.stdout)
    import duckdb

    assert duckdb.sql(f"SELECT count(*) FROM '{out}'").fetchall() == [(19,)]


def test_sql_json_and_bad_sql(swept: Project) -> None:
    result = whirr(
        swept,
        "sql",
        "SELECT run_id, max(step) AS s FROM metrics GROUP BY run_id ORDER BY run_id",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"run_id": "job-1", "s": 2},
        {"run_id": "job-2", "s": 2},
        {"run_id": "job-3", "s": 1},
        {"run_id": "local-run", "s": 1},
        {"run_id": "ünï-run", "s": 0},
    ]
    bad = whirr(swept, "sql", "SELECT FROM WHERE")
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: Parser Error")
    assert "Traceback" not in bad.stderr


def test_runs_where_and_sort(swept: Project) -> None:
    result = whirr(
        swept, "runs", "--where", "config.opt = 'sgd'", "--sort", "-summary.best_loss", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in json.loads(result.stdout)["runs"]] == ["job-1", "job-2", "ünï-run"]
    limited = whirr(
        swept, "runs", "-w", "config.lr >= 0.01", "--sort", "config.lr", "-n", "2", "--json"
    )
    assert [r["id"] for r in json.loads(limited.stdout)["runs"]] == ["job-2", "local-run"]
    bad = whirr(swept, "runs", "--where", "config.lr <")
    assert bad.returncode == 1 and bad.stderr.startswith("Error:")
    assert "Traceback" not in bad.stderr


def test_analytics_never_appends_to_the_event_log(swept: Project) -> None:
    store = swept.open_store()
    try:
        head = store.head()
        for args in (
            ["compare", "job-1", "job-2"],
            ["export", "--metrics"],
            ["sql", "SELECT * FROM jobs, runs, metrics, system"],
        ):
            assert whirr(swept, *args).returncode == 0
        assert store.head() == head
    finally:
        store.close()


# A whirr command in a fresh interpreter; prints (to stderr) whether Polars got imported.
_PROBE = (
    "import sys; from whirr.cli.main import cli; "
    "cli.main(sys.argv[1:], prog_name='whirr', standalone_mode=False); "
    "print('polars' in sys.modules, file=sys.stderr)"
)


@pytest.mark.parametrize(
    "args",
    [
        ["runs"],
        ["runs", "--where", "config.lr < 0.05", "--sort", "summary.best_loss"],
        ["sql", "SELECT run_id, max(step) FROM metrics GROUP BY ALL"],
        ["compare", "job-1", "job-2"],
        ["export", "-f", "parquet", "-o", "runs.parquet"],
        ["export", "--metrics", "-f", "parquet", "-o", "m.parquet"],
        ["export", "--metrics", "--wide", "-f", "csv", "-o", "m.csv"],
    ],
)
def test_commands_never_import_polars(swept: Project, args: list[str]) -> None:
    # `import polars` alone costs ~0.4 s, and DuckDB writes every output itself.
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=swept.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "False"
