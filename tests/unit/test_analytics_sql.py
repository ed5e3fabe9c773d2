"""`whirr sql` over runs/jobs/metrics/system, and `filter_runs` (`whirr runs --where`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_analytics_support import invoke, new_project, sql

from whirr.analytics.errors import AnalyticsError
from whirr.analytics.filters import filter_runs, sort_clause
from whirr.cli.main import cli
from whirr.project import Project
from whirr.services import Jobs


def test_runs_view_has_struct_config_and_summary(swept: Project) -> None:
    result = sql(
        swept,
        "SELECT id, config.lr, summary.best_loss, duration_seconds, tags "
        "FROM runs WHERE config.bs = 32 ORDER BY id",
    )
    assert result.columns == ["id", "lr", "best_loss", "duration_seconds", "tags"]
    assert result.rows == [
        ("job-1", 0.1, 0.5, 90.5, ["sweep"]),
        ("job-2", 0.01, 0.25, 120.25, ["sweep"]),
    ]


def test_metrics_view_joins_runs(swept: Project) -> None:
    result = sql(
        swept,
        "SELECT r.name, min(m.loss), max(m.acc), count(*) FROM runs r "
        "JOIN metrics m ON m.run_id = r.id GROUP BY ALL ORDER BY 1",
    )
    assert result.rows == [
        ("lr-0.001", 1.5, None, 2),
        ("lr-0.01", 0.25, 0.75, 3),
        ("lr-0.1", 0.5, 0.5, 3),
        ("quick", 0.6, None, 2),
        ("ünïcødé ✓", 0.5, 0.9, 1),
    ]
    typed = sql(
        swept, "SELECT typeof(_timestamp), typeof(step), typeof(val_loss) FROM metrics LIMIT 1"
    )
    assert typed.rows == [("TIMESTAMP WITH TIME ZONE", "BIGINT", "DOUBLE")]


def test_system_and_jobs_views(swept: Project) -> None:
    store = swept.open_store()
    try:
        Jobs(store).submit(
            ["python", "train.py"], str(swept.root), name="j", config={"lr": 0.5}, tags=["x"]
        )
    finally:
        store.close()
    system = sql(swept, "SELECT run_id, cpu_percent, memory_used_gb FROM system")
    assert system.rows == [("job-1", 10.0, 1.5)]
    jobs = sql(swept, "SELECT id, name, status, command_argv, config.lr, tags FROM jobs")
    assert jobs.rows == [(1, "j", "queued", ["python", "train.py"], 0.5, ["x"])]


def test_output_formats_are_exact(swept: Project) -> None:
    query = "SELECT id, summary.best_loss AS best, started_at FROM runs WHERE id = 'job-2'"
    code, out, _ = invoke("sql", query, "-o", "csv")
    assert code == 0
    assert out == "id,best,started_at\njob-2,0.25,2024-05-01T12:01:00.000000Z\n"
    code, out, _ = invoke("sql", query, "--json")
    assert json.loads(out) == [
        {"id": "job-2", "best": 0.25, "started_at": "2024-05-01T12:01:00.000000Z"}
    ]
    code, out, _ = invoke("sql", "SELECT 1 AS a UNION ALL SELECT 2", "-o", "jsonl")
    assert out == '{"a":1}\n{"a":2}\n'
    code, out, _ = invoke("sql", "SELECT id, summary.best_loss FROM runs ORDER BY id LIMIT 3")
    assert out.splitlines() == [
        "id     best_loss",
        "empty  NULL",
        "job-1  0.5",
        "job-2  0.25",
        "(3 rows)",
    ]


def test_bad_sql_gives_duckdbs_message(swept: Project) -> None:
    code, out, err = invoke("sql", "SELEC * FROM runs")
    assert code == 1
    assert err.startswith('Error: Parser Error: syntax error at or near "SELEC"')
    code, _, err = invoke("sql", "SELECT nope FROM runs")
    assert code == 1 and err.startswith("Error: Binder Error") and "nope" in err
    code, _, err = invoke("sql", "SELECT config.nope FROM runs")
    assert code == 1 and 'Could not find key "nope"' in err
    code, _, err = invoke("sql", "SELECT * FROM elsewhere")
    assert code == 1 and "elsewhere" in err
    assert "Traceback" not in out + err


def test_query_from_stdin(swept: Project) -> None:
    result = CliRunner().invoke(
        cli, ["sql", "-", "-o", "csv"], input="SELECT count(*) AS n FROM runs"
    )
    assert result.exit_code == 0 and result.stdout == "n\n6\n"


def test_no_project_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("sql", "SELECT 1")
    assert code == 1 and err.startswith("Error: no whirr project here")


def test_heterogeneous_config_types(tmp_path: Path) -> None:
    project, b = new_project(tmp_path / "p")
    b.run("a", config={"lr": 1, "sched": "cos", "opt": {"b1": 0.9}})
    b.run("b", config={"lr": 0.5, "sched": 3, "warmup": True})
    b.run("c")
    rows = sql(
        project,
        "SELECT id, config.lr, config.sched, config.opt.b1, config.warmup FROM runs ORDER BY id",
    ).rows
    # int + float widen to DOUBLE; a number mixed with text stays text, as written.
    assert rows == [
        ("a", 1.0, "cos", 0.9, None),
        ("b", 0.5, "3", None, True),
        ("c", None, None, None, None),
    ]


# -- filter_runs (whirr runs --where/--sort) --------------------------------------------


def ids(runs: list) -> list[str]:
    return [r.id for r in runs]


def test_where_and_sort(swept: Project) -> None:
    store = swept.open_store()
    try:
        runs = store.runs()
    finally:
        store.close()
    assert ids(filter_runs(runs, ["config.lr < 0.1"])) == ["local-run", "job-3", "job-2"]
    assert ids(filter_runs(runs, ["config.lr < 0.1"], ["summary.best_loss"])) == [
        "job-2",
        "local-run",
        "job-3",
    ]  # missing values last, then newest first
    assert ids(filter_runs(runs, [], ["-summary.best_loss"], limit=2)) == ["job-1", "job-2"]
    assert ids(filter_runs(runs, [], ["config.lr desc"], limit=2)) == ["ünï-run", "job-1"]
    assert ids(filter_runs(runs, ["config.opt = 'sgd'", "summary.best_loss > 0.2"])) == [
        "job-2",
        "job-1",
    ]
    assert ids(filter_runs(runs, ["name LIKE 'ünï%'"])) == ["ünï-run"]
    assert ids(filter_runs(runs, ["'sweep' IN tags", "status = 'failed'"])) == ["job-3"]
    assert filter_runs([], ["config.lr < 1"]) == []


def test_where_errors(swept: Project) -> None:
    store = swept.open_store()
    try:
        runs = store.runs()
    finally:
        store.close()
    with pytest.raises(AnalyticsError, match='Could not find key "nope"'):
        filter_runs(runs, ["config.nope > 1"])
    with pytest.raises(AnalyticsError, match=r"one expression each|Parser Error"):
        filter_runs(runs, ["true); DROP TABLE runs; SELECT (1"])
    # A filter reads the runs table and nothing else.
    with pytest.raises(AnalyticsError, match="disabled"):
        filter_runs(runs, ["name = (SELECT content FROM read_text('/etc/hostname'))"])
    with pytest.raises(AnalyticsError, match="names nothing"):
        sort_clause("-")
    assert sort_clause("summary.x DESC") == "(summary.x) DESC NULLS LAST"
    assert sort_clause("config.lr asc") == "(config.lr) ASC NULLS LAST"
