"""`whirr export`: runs and metrics in every format, exact; the Parquet cache."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import duckdb
import pytest
from test_analytics_support import invoke, metric_lines, new_project, project_session

from whirr.analytics.export import Engine, export_metrics
from whirr.project import Project

RUN_HEADER = (
    "id,name,job_id,status,tags,hostname,started_at,finished_at,duration_seconds,"
    "exit_code,error,config.lr,config.bs,config.opt,summary.best_loss"
)


def read(path: Path) -> list[tuple]:
    return duckdb.sql(f"SELECT * FROM '{path}'").fetchall()


def test_runs_csv_to_stdout_is_exact(swept: Project) -> None:
    code, out, err = invoke("export")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == RUN_HEADER
    assert lines[1] == (
        'ünï-run,ünïcødé ✓,,completed,"sweep,ü",testhost,'
        "2024-05-01T12:05:00.000000Z,2024-05-01T12:05:10.000000Z,10.0,,,"
        "0.2,16,sgd,0.125"
    )
    assert lines[5] == (
        "job-2,lr-0.01,2,completed,sweep,testhost,2024-05-01T12:01:00.000000Z,"
        "2024-05-01T12:03:00.250000Z,120.25,,,0.01,32,sgd,0.25"
    )
    assert [line.split(",")[0] for line in lines[1:]] == [
        "ünï-run",
        "empty",
        "local-run",
        "job-3",
        "job-2",
        "job-1",
    ]


def test_runs_filters_and_named_runs_keep_their_order(swept: Project) -> None:
    code, out, _ = invoke("export", "-s", "completed", "-t", "sweep")
    assert code == 0
    assert [r["id"] for r in csv.DictReader(io.StringIO(out))] == ["ünï-run", "job-2", "job-1"]
    code, out, _ = invoke("export", "job-1", "job-3", "job-2")
    assert [r["id"] for r in csv.DictReader(io.StringIO(out))] == ["job-1", "job-3", "job-2"]


def test_runs_json_jsonl_and_the_original_form(swept: Project) -> None:
    code, _, err = invoke("export", "all.json")  # `whirr export OUTPUT.json`
    assert code == 0 and "Wrote 6 runs to all.json" in err
    rows = json.loads((swept.root / "all.json").read_text())
    job1 = next(r for r in rows if r["id"] == "job-1")
    assert job1["config.lr"] == 0.1 and job1["config.bs"] == 32
    assert job1["summary.best_loss"] == 0.5
    assert job1["tags"] == ["sweep"]
    assert job1["duration_seconds"] == 90.5
    assert job1["finished_at"] == "2024-05-01T12:01:30.500000Z"
    code, out, _ = invoke("export", "job-2", "-f", "jsonl")
    (line,) = out.splitlines()
    assert json.loads(line)["summary.best_loss"] == 0.25


def test_runs_parquet_keeps_types(swept: Project) -> None:
    code, _, _ = invoke("export", "job-1", "job-2", "-o", "runs.parquet")
    assert code == 0
    con = duckdb.connect()
    rows = con.execute(
        'SELECT id, "config.lr", "config.bs", tags, duration_seconds, '
        "epoch_us(started_at) FROM 'runs.parquet'"
    ).fetchall()
    assert rows == [
        ("job-1", 0.1, 32, ["sweep"], 90.5, 1714564800000000),
        ("job-2", 0.01, 32, ["sweep"], 120.25, 1714564860000000),
    ]


def test_metrics_long_csv_exact(swept: Project) -> None:
    code, out, _ = invoke("export", "job-3", "job-1", "--metrics")
    assert code == 0
    assert out.splitlines() == [
        "run_id,_idx,_timestamp,step,metric,value",
        "job-3,0,2024-05-01T12:02:00.000000Z,0,loss,2.0",
        "job-3,1,2024-05-01T12:02:01.000000Z,1,loss,1.5",
        "job-3,1,2024-05-01T12:02:01.000000Z,1,val_loss,1.25",
        "job-1,0,2024-05-01T12:00:00.000000Z,0,loss,1.0",
        "job-1,0,2024-05-01T12:00:00.000000Z,0,acc,0.1",
        "job-1,1,2024-05-01T12:00:01.000000Z,1,loss,0.75",
        "job-1,1,2024-05-01T12:00:01.000000Z,1,acc,0.25",
        "job-1,2,2024-05-01T12:00:02.000000Z,2,loss,0.5",
        "job-1,2,2024-05-01T12:00:02.000000Z,2,acc,0.5",
    ]


def test_metrics_wide_json_and_selected_keys(swept: Project) -> None:
    code, out, _ = invoke("export", "job-3", "ünï", "--metrics", "--wide", "-f", "json")
    assert code == 0
    assert json.loads(out) == [
        {
            "run_id": "job-3",
            "_idx": 0,
            "_timestamp": "2024-05-01T12:02:00.000000Z",
            "step": 0,
            "loss": 2.0,
            "val_loss": None,
            "acc": None,
        },
        {
            "run_id": "job-3",
            "_idx": 1,
            "_timestamp": "2024-05-01T12:02:01.000000Z",
            "step": 1,
            "loss": 1.5,
            "val_loss": 1.25,
            "acc": None,
        },
        {
            "run_id": "ünï-run",
            "_idx": 0,
            "_timestamp": "2024-05-01T12:05:00.000000Z",
            "step": 0,
            "loss": 0.5,
            "val_loss": None,
            "acc": 0.9,
        },
    ]
    code, out, _ = invoke("export", "job-1", "--metrics", "--wide", "-m", "acc")
    assert out.splitlines()[:2] == [
        "run_id,_idx,_timestamp,step,acc",
        "job-1,0,2024-05-01T12:00:00.000000Z,0,0.1",
    ]


def test_metrics_parquet_of_every_run(swept: Project) -> None:
    code, _, err = invoke("export", "--metrics", "-o", "m.parquet")
    assert code == 0 and "Wrote 19 metric rows" in err
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = con.execute(
        "SELECT run_id, metric, count(*), sum(value) FROM 'm.parquet' GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert rows == [
        ("job-1", "acc", 3, 0.85),
        ("job-1", "loss", 3, 2.25),
        ("job-2", "acc", 3, 1.575),
        ("job-2", "loss", 3, 1.525),
        ("job-3", "loss", 2, 3.5),
        ("job-3", "val_loss", 1, 1.25),
        ("local-run", "loss", 2, 1.4),
        ("ünï-run", "acc", 1, 0.9),
        ("ünï-run", "loss", 1, 0.5),
    ]
    ts = con.execute(
        "SELECT any_value(typeof(_timestamp)), min(epoch_us(_timestamp)) FROM 'm.parquet'"
    )
    assert ts.fetchall() == [("TIMESTAMP WITH TIME ZONE", 1714564800000000)]


def test_nan_text_and_int_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project, b = new_project(tmp_path / "p")
    # NaN is written as null; a text metric stays in --wide only; ints stay ints there.
    b.run(
        "r",
        metrics=[
            {"step": 0, "loss": float("nan"), "phase": "warmup", "epoch": 1},
            {"step": 1, "loss": 0.5, "phase": "train", "epoch": 2},
        ],
    )
    monkeypatch.chdir(project.root)
    _, out, _ = invoke("export", "r", "--metrics")
    assert out.splitlines()[1:] == [
        "r,0,2024-05-01T12:00:00.000000Z,0,epoch,1.0",
        "r,1,2024-05-01T12:00:01.000000Z,1,loss,0.5",
        "r,1,2024-05-01T12:00:01.000000Z,1,epoch,2.0",
    ]
    _, out, _ = invoke("export", "r", "--metrics", "--wide")
    assert out.splitlines() == [
        "run_id,_idx,_timestamp,step,loss,phase,epoch",
        "r,0,2024-05-01T12:00:00.000000Z,0,,warmup,1",
        "r,1,2024-05-01T12:00:01.000000Z,1,0.5,train,2",
    ]
    code, _, err = invoke("export", "r", "--metrics", "-m", "phase")
    assert code == 1 and "phase are not numbers; export them with --wide" in err


def test_bad_arguments_are_clear(swept: Project) -> None:
    code, _, err = invoke("export", "-o", "runs.xlsx")
    assert code == 1 and "cannot tell the format of 'runs.xlsx'" in err
    code, _, err = invoke("export", "--wide")
    assert code == 2 and "--wide and -m go with --metrics" in err
    code, _, err = invoke("export", "job")
    assert code == 1 and "matches several runs" in err
    code, _, err = invoke("export", "job-1", "--metrics", "-m", "nope")
    assert code == 1 and "no exported run logged 'nope'" in err
    assert not list(swept.root.glob(".*.tmp"))


def test_empty_selection_writes_only_a_header(swept: Project) -> None:
    code, out, _ = invoke("export", "-s", "cancelled")
    assert code == 0
    assert out.splitlines()[0].startswith("id,name,job_id,status")
    code, out, _ = invoke("export", "empty", "--metrics")
    assert out.splitlines() == ["run_id,_idx,_timestamp,step,metric,value"]


def long_runs(tmp_path: Path) -> Project:
    """Two finished runs big enough to be cached, a small one and a running one."""
    project, b = new_project(tmp_path / "long")
    curve = [{"step": i, "loss": 1 / (i + 1), "acc": i / 1000} for i in range(1000)]
    b.run("big-a", metrics=curve)
    b.run("big-b", metrics=curve[:900])
    b.run("small", metrics=curve[:3])
    b.run("live", metrics=curve, status="running")
    return project


def test_cache_is_built_for_finished_runs_and_rebuilt_when_stale(tmp_path: Path) -> None:
    project = long_runs(tmp_path)
    cache = project.dir / "cache" / "metrics"
    with project_session(project) as session:
        first = session.segments(session.whirr.runs(limit=None))
        before = session.con.execute(
            "SELECT run_id, count(*), sum(loss) FROM _metrics GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    names = sorted(os.listdir(cache))
    # Only big finished runs are copied: a running run's file grows, a small one is cheap.
    assert [n.split(".")[0] for n in names] == ["big-a", "big-b"]
    with project_session(project) as session:
        session.segments(session.whirr.runs(limit=None))
        again = session.con.execute(
            "SELECT run_id, count(*), sum(loss) FROM _metrics GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    assert again == before and [r[1] for r in before] == [1000, 900, 1000, 3]
    # The JSONL changes (a resumed run appended): the copy no longer matches, is rebuilt.
    path = project.run_dir("big-a") / "metrics.jsonl"
    with open(path, "ab") as fh:
        fh.write(metric_lines([{"step": 1000, "loss": 0.125}]).replace(b'"_idx":0', b'"_idx":1000'))
    with project_session(project) as session:
        table = session.segments([session.whirr.run("big-a")])
        last = session.con.execute("SELECT _idx, loss FROM _metrics ORDER BY _idx DESC LIMIT 1")
        assert last.fetchall() == [(1000, 0.125)]
    assert table.columns == first.columns
    big_a = [n for n in os.listdir(cache) if n.startswith("big-a.")]
    assert len(big_a) == 1 and big_a[0] not in names


def test_cached_and_uncached_reads_agree(tmp_path: Path) -> None:
    project = long_runs(tmp_path)
    with project_session(project) as session:
        runs = session.whirr.runs(limit=None)
        cold = tmp_path / "cold.csv"
        export_metrics(session, runs, "csv", cold, wide=True)
    assert len(os.listdir(project.dir / "cache" / "metrics")) == 2
    with project_session(project) as session:
        warm = tmp_path / "warm.csv"
        export_metrics(session, session.whirr.runs(limit=None), "csv", warm, wide=True)
    assert cold.read_text() == warm.read_text()


def test_unwritable_cache_falls_back_to_the_jsonl(tmp_path: Path) -> None:
    project = long_runs(tmp_path)
    (project.dir / "cache").write_text("not a directory")
    with project_session(project) as session:
        out = tmp_path / "m.csv"
        count = export_metrics(session, session.whirr.runs(limit=None), "csv", out)
    assert count == 2 * (1000 + 900 + 1000 + 3)


LONG_PARQUET = (
    "SELECT run_id, _idx, epoch_us(_timestamp), step, metric, value, "
    "typeof(_idx), typeof(_timestamp), typeof(step), typeof(value) FROM '{}'"
)


@pytest.mark.parametrize("ids", [["job-3", "ünï-run", "empty", "job-1", "local-run"], []])
def test_long_parquet_is_the_same_from_duckdb_and_polars(swept: Project, ids: list[str]) -> None:
    # Polars shapes large long Parquet exports; the file must hold exactly DuckDB's rows,
    # in the same order and with the same types (unicode ids, an empty run, differing
    # keys, a torn last line included).
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    tables = {}
    engines: tuple[Engine, ...] = ("duckdb", "polars")
    for engine in engines:
        with project_session(swept) as session:
            runs = [session.whirr.run(i) for i in ids] or session.whirr.runs(limit=None)
            out = swept.root / f"{engine}.parquet"
            count = export_metrics(session, runs, "parquet", out, engine=engine)
        tables[engine] = con.execute(LONG_PARQUET.format(out)).fetchall()
        assert count == len(tables[engine])
    rows = tables["polars"]
    assert rows == tables["duckdb"]
    assert len(rows) == (13 if ids else 19)
    first = ("job-3", 0, 1714564920000000, 0, "loss", 2.0) if ids else rows[0][:6]
    assert rows[0] == (*first, "BIGINT", "TIMESTAMP WITH TIME ZONE", "BIGINT", "DOUBLE")


def test_polars_long_parquet_drops_nulls_and_keeps_ints_as_doubles(tmp_path: Path) -> None:
    project, b = new_project(tmp_path / "p")
    b.run(
        "r",
        metrics=[
            {"step": 0, "loss": float("nan"), "phase": "warmup", "epoch": 1},
            {"step": 1, "loss": 0.5, "phase": "train", "epoch": 2},
        ],
    )
    with project_session(project) as session:
        out = tmp_path / "m.parquet"
        count = export_metrics(
            session, session.whirr.runs(limit=None), "parquet", out, engine="polars"
        )
    assert count == 3
    assert duckdb.connect().execute(f"SELECT _idx, metric, value FROM '{out}'").fetchall() == [
        (0, "epoch", 1.0),
        (1, "loss", 0.5),
        (1, "epoch", 2.0),
    ]
    assert not list(tmp_path.rglob(".*.tmp"))
