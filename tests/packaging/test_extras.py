"""Every extra starts every command it enables (issue 20 §2): a fresh venv per extra, built
from this checkout's wheel, runs what that extra promises, and a command whose extra is
missing says in one line which one to install (no traceback).

    none       init, submit, worker, runs, logs (the tracking library in the jobs), and
               every --server command and remote worker (the HTTP client is a core
               dependency)
    analytics  compare, export, sql
    server     the server: the API and the dashboard it serves at /
    dashboard  whirr dashboard: pages, chart series, plotly.js
    sweeps     whirr sweep of a bayes sweep file (Optuna's TPE proposes its points)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from installs import EXTRAS, Venv, clean_env
from server_process import free_port
from serving import serving

from whirr.cli.extras import PROVIDED_BY

pytestmark = pytest.mark.timeout(600)  # the first run downloads every extra's wheels

TRAIN = """\
import sys

import whirr

lr = float(sys.argv[1])
run = whirr.init(config={"lr": lr})
for step in range(5):
    run.log({"loss": lr / (step + 1)}, step=step)
run.summary({"best_loss": lr / 5})
run.finish()
"""

BAYES = """\
program: python train.py
method: bayes
max_runs: 4
max_concurrent: 2
metric: {name: loss, goal: minimize}
parameters:
  lr: {distribution: log_uniform, min: 0.0001, max: 0.1}
"""

#: Libraries of the table that come along with an extra's own (optuna needs numpy).
PULLED_IN = {"sweeps": {"numpy"}}


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def assert_needs(result: subprocess.CompletedProcess[str], extra: str) -> None:
    """One ``Error:`` line naming ``whirr[extra]``, exit 1, no traceback."""
    shown = f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 1, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), shown
    assert f"pip install 'whirr[{extra}]'" in lines[0], shown


@pytest.fixture(scope="module")
def project(installs: dict[str, Venv], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project made and run by the plain install: two finished jobs that logged."""
    venv = installs["none"]
    root = tmp_path_factory.mktemp("project")
    (root / "train.py").write_text(TRAIN)
    ok(venv.run("init", cwd=root))
    for lr in ("0.1", "0.01"):
        ok(venv.run("submit", "--", venv.python, "train.py", lr, cwd=root))
    ok(venv.run("worker", "--exit-when-empty", "-q", cwd=root, timeout=120))
    return root


def test_each_extra_installs_exactly_the_libraries_its_error_messages_name(
    installs: dict[str, Venv],
) -> None:
    # whirr.cli.extras names the extra to install for each optional library: each fresh
    # venv has exactly the libraries the table says its extra brings.
    for extra in EXTRAS:
        venv = installs[extra]
        probe = (
            "import importlib.util, json, sys; "
            "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m)]))"
        )
        found = subprocess.run(
            [venv.python, "-c", probe, *PROVIDED_BY],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        expected = {module for module, extras in PROVIDED_BY.items() if extra in extras}
        expected |= PULLED_IN.get(extra, set())
        assert set(json.loads(found.stdout)) == expected, extra


def test_plain_install_runs_a_project_and_names_the_extra_of_each_other_command(
    installs: dict[str, Venv], project: Path, tmp_path: Path
) -> None:
    venv = installs["none"]
    runs = ok(venv.run("runs", cwd=project))
    assert runs.count("completed") == 2, runs
    ok(venv.run("logs", "1", cwd=project))
    assert '"config":{"lr":0.01}' in ok(venv.run("show", "job-2", "--json", cwd=project))

    port = str(free_port())
    assert_needs(venv.run("server", "-d", tmp_path / "data", "--no-auth", "-p", port), "server")
    assert_needs(venv.run("dashboard", "-p", port, cwd=project), "dashboard")
    assert_needs(venv.run("compare", "job-1", "job-2", cwd=project), "analytics")
    assert_needs(venv.run("export", "-o", tmp_path / "runs.csv", cwd=project), "analytics")
    assert_needs(venv.run("sql", "select count(*) from runs", cwd=project), "analytics")
    assert_needs(venv.run("runs", "--where", "config.lr < 0.05", cwd=project), "analytics")
    (tmp_path / "bayes.yaml").write_text(BAYES)
    assert_needs(venv.run("sweep", tmp_path / "bayes.yaml", "-n", cwd=project), "sweeps")


def test_analytics_install_compares_exports_and_queries(
    installs: dict[str, Venv], project: Path, tmp_path: Path
) -> None:
    venv = installs["analytics"]
    compared = ok(venv.run("compare", "job-1", "job-2", "-m", "loss", "-o", "csv", cwd=project))
    assert "loss" in compared and "0.1" in compared, compared
    out = tmp_path / "metrics.csv"
    ok(venv.run("export", "job-1", "--metrics", "-o", out, cwd=project))
    assert len(out.read_text().splitlines()) == 1 + 5  # a header, then one row per log()
    counted = ok(venv.run("sql", "select count(*) as n from metrics", "-o", "csv", cwd=project))
    assert counted.split() == ["n", "10"], counted

    port = str(free_port())  # were it to start after all, not on 8080
    assert_needs(venv.run("server", "-d", tmp_path / "data", "--no-auth", "-p", port), "server")
    assert_needs(venv.run("dashboard", cwd=project), "dashboard")


def test_sweeps_install_proposes_a_bayes_sweeps_first_points(
    installs: dict[str, Venv], tmp_path: Path
) -> None:
    venv = installs["sweeps"]
    (tmp_path / "bayes.yaml").write_text(BAYES)
    planned = ok(venv.run("sweep", "bayes.yaml", "-n", "--seed", "7", "--json", cwd=tmp_path))
    jobs = json.loads(planned)["jobs"]
    assert len(jobs) == 2, planned  # max_concurrent of them, queued at once
    assert all(0.0001 <= job["config"]["lr"] <= 0.1 for job in jobs), planned


def test_server_install_serves_the_api_and_the_dashboard_to_a_plain_client(
    installs: dict[str, Venv], tmp_path: Path
) -> None:
    server, client = installs["server"], installs["none"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [server.whirr, "server", "-d", tmp_path / "data", "--no-auth", "-p", str(port)]
    with serving(argv, url, tmp_path / "server.log", clean_env(server)) as served:
        assert served.get("/api/v1/health").json()["status"] == "healthy"
        assert "<html" in served.get("/").text.lower()
        # A plain install submits to it and works for it as a remote worker.
        (tmp_path / "train.py").write_text(TRAIN)
        ok(
            client.run(
                "submit", "--server", url, "--", client.python, "train.py", "0.1", cwd=tmp_path
            )
        )
        worker = ("worker", "--server", url, "-d", tmp_path / "worker", "--exit-when-empty", "-q")
        ok(client.run(*worker, cwd=tmp_path, timeout=120))
        assert "completed" in ok(client.run("status", "1", "--server", url))
        # The dashboard draws the run's chart from the shipped metrics (numpy at work).
        series = served.get("/ui/runs/job-1/series", params={"points": 50}).json()
        assert [s["key"] for s in series["series"]] == ["loss"], series
    assert "dashboard is off" not in served.output()
    assert "Traceback" not in served.output()

    assert_needs(server.run("compare", "1", "--server", url), "analytics")
    # S3 artifacts are an extra of their own: refused at start, not at the first upload.
    s3 = ("--artifact-store", "s3://bucket/prefix", "-p", str(free_port()))
    assert_needs(server.run("server", "-d", tmp_path / "s3", "--no-auth", *s3), "s3")


def test_dashboard_install_serves_a_project(
    installs: dict[str, Venv], project: Path, tmp_path: Path
) -> None:
    venv = installs["dashboard"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [venv.whirr, "dashboard", "-p", str(port)]
    with serving(argv, url, tmp_path / "dashboard.log", clean_env(venv), project, "/") as served:
        assert served.get("/runs/job-1").status_code == 200
        series = served.get("/ui/runs/job-1/series", params={"points": 50}).json()
        assert [s["key"] for s in series["series"]] == ["loss"], series
        plotly = served.get("/static/vendor/plotly.min.js")
        assert plotly.status_code == 200 and b"plotly" in plotly.content[:200]
    assert "Traceback" not in served.output()

    assert_needs(venv.run("compare", "job-1", "job-2", cwd=project), "analytics")
    pg = "postgresql://whirr@127.0.0.1:1/whirr"
    pg_server = ("server", "-d", tmp_path / "data", "--database-url", pg, "-p", str(free_port()))
    assert_needs(venv.run(*pg_server), "server")


def test_server_without_the_dashboards_libraries_serves_the_api_and_says_so(
    installs: dict[str, Venv], tmp_path: Path
) -> None:
    # whirr and sanic installed by hand, without numpy and plotly: the API still starts.
    venv = installs["sanic-only"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [venv.whirr, "server", "-d", tmp_path / "data", "--no-auth", "-p", str(port)]
    with serving(argv, url, tmp_path / "server.log", clean_env(venv)) as served:
        assert served.get("/api/v1/health").json()["status"] == "healthy"
        assert served.get("/").status_code == 404
    said = [line for line in served.output().splitlines() if "dashboard" in line]
    assert len(said) == 1 and "pip install 'whirr[dashboard]'" in said[0], served.output()
    assert "numpy and plotly not installed" in said[0], said
    assert "Traceback" not in served.output()
