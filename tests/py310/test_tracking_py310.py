"""The tracking library on Python 3.10 (issue 20 §5): ``import whirr``, ``whirr.init``,
``run.log``, ``run.summary``, ``run.save_artifact``, ``run.finish`` and the context manager,
in a direct run, in a job a real 3.11 worker runs, and recorded on a real 3.11 server;
the ``whirr`` command itself refuses 3.10 in one line.

The scripts run under the 3.10 venv of ``conftest.py`` (this checkout installed there);
the test itself, the workers and the server are this 3.11 interpreter's, and read back
what the 3.10 scripts recorded through the project's store or the server's API.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

from cli_runner import run_cli
from server_process import ServerProcess, start_remote_worker, worker_output

from whirr.client import WhirrClient
from whirr.project import Project
from whirr.run import read_meta, read_metrics
from whirr.services import Jobs
from whirr.services.runs import Runs

PACKAGE = Path(__file__).resolve().parents[2] / "whirr"
#: Where the guard starts: what ``import whirr`` offers, and the integrations (hooks that
#: call ``whirr.init``), when the package has them.
ROOTS = ("whirr", "whirr.tracking", "whirr.run", "whirr.integrations")
#: Reached by the walk but never by the tracking library, which opens a project's SQLite
#: store only (``Project.open_store``): the PostgreSQL store is the server's ([server]).
NOT_TRACKING = ("whirr.store.postgres",)

#: Run by the 3.10 venv: import each module named; a hook whose framework is not
#: installed (an ImportError caused by that framework's absence) is compiled instead (its
#: whirr imports are in the list themselves).
GUARD = r"""
import importlib, importlib.util, json, sys, traceback
import whirr

def missing_framework(exc):
    while exc is not None:
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return exc.name.split(".")[0] != "whirr"
        exc = exc.__cause__ or exc.__context__
    return False

out = {"file": whirr.__file__, "prefix": sys.prefix, "version": list(sys.version_info[:2]),
       "failed": {}, "compiled_only": []}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        if name.startswith("whirr.integrations.") and missing_framework(exc):
            origin = importlib.util.find_spec(name).origin
            with open(origin) as source:
                compile(source.read(), origin, "exec")
            out["compiled_only"].append(name)
        else:
            out["failed"][name] = traceback.format_exc()
    except Exception:
        out["failed"][name] = traceback.format_exc()
print(json.dumps(out))
"""


def module_path(name: str) -> Path | None:
    """The source file of the ``whirr`` module ``name`` in this checkout, if it is one."""
    parts = name.split(".")
    if parts[0] != "whirr":
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_name(base.name + ".py")):
        if path.is_file():
            return path
    return None


def whirr_imports(path: Path) -> set[str]:
    """Every ``whirr`` module ``path`` imports, at its top or inside a function."""
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            named.add(node.module)
            named |= {f"{node.module}.{alias.name}" for alias in node.names}
    found: set[str] = set()
    for name in named:
        parts = name.split(".")
        if parts[0] != "whirr":
            continue
        for end in range(1, len(parts) + 1):  # a package's __init__ runs too
            prefix = ".".join(parts[:end])
            if module_path(prefix) is not None:
                found.add(prefix)
    return found


def tracking_closure() -> list[str]:
    """The ``whirr`` modules the tracking library can import (statically, lazy imports
    included), from ``ROOTS``: what must import on 3.10."""
    todo = [root for root in ROOTS if module_path(root) is not None]
    hooks = PACKAGE / "integrations"
    todo += [f"whirr.integrations.{p.stem}" for p in hooks.glob("*.py") if p.stem != "__init__"]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name.startswith(NOT_TRACKING):
            continue
        seen.add(name)
        path = module_path(name)
        assert path is not None, name
        todo += whirr_imports(path)
    return sorted(seen)


def child_env(**extra: str) -> dict[str, str]:
    """This environment for a 3.10 script: nothing of this checkout on its path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env = {k: v for k, v in env.items() if not k.startswith("WHIRR_")}
    return {**env, **extra}


def run310(
    python: Path, code: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", code],
        cwd=cwd,
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tracking_closure_imports_on_python_310(venv310: Path, tmp_path: Path) -> None:
    modules = tracking_closure()
    # The walk reaches the lazily imported paths: the project store, the server's client.
    assert {"whirr.tracking.remote", "whirr.client", "whirr.store.sqlite.store"} <= set(modules)
    done = subprocess.run(
        [str(venv310), "-c", GUARD, *modules],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == [3, 10]
    assert report["file"].startswith(report["prefix"]), report  # the installed copy
    assert report["failed"] == {}, "\n".join(report["failed"].values())


DIRECT = """\
import pathlib, sys, whirr
assert sys.version_info[:2] == (3, 10), sys.version
pathlib.Path("model.bin").write_bytes(b"0" * 100)
with whirr.init(name="on-310", config={"lr": 0.1}, tags=["py310"],
                system_metrics_interval=0.1) as run:
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    run.summary({"best": 0.33})
    run.save_artifact("model.bin", "ckpt/best.bin")
failing = whirr.init(name="fails", capture_pip=False, system_metrics=False)
try:
    with failing:
        raise ValueError("boom")
except ValueError:
    pass
again = whirr.init(resume=run.run_id, capture_pip=False, system_metrics=False)
again.log({"loss": 0.1}, step=3)
again.finish()
print(run.run_id, failing.run_id)
"""


def test_a_direct_run_on_python_310(venv310: Path, project: Project) -> None:
    subprocess.run(["git", "init", "-q"], cwd=project.root, check=True)
    done = run310(venv310, DIRECT, project.root)
    assert done.returncode == 0, done.stderr
    run_id, failed_id = done.stdout.split()
    store = project.open_store()
    try:
        runs = {view.id: view for view in Runs(store).list()}
    finally:
        store.close()
    assert set(runs) == {run_id, failed_id}
    run = runs[run_id]
    assert (run.name, run.status, run.tags) == ("on-310", "completed", ["py310"])
    assert run.config == {"lr": 0.1} and run.summary == {"best": 0.33}
    assert [(a.path, a.size) for a in run.artifacts] == [("ckpt/best.bin", 100)]
    assert run.git is not None
    failed = runs[failed_id]
    assert failed.status == "failed" and "boom" in (failed.error or "")
    run_dir = project.run_dir(run_id)
    assert [r["step"] for r in read_metrics(run_dir)] == [0, 1, 2, 3]
    meta = read_meta(run_dir) or {}
    assert meta["status"] == "completed" and meta["finished_at"].endswith("Z")
    assert (run_dir / "artifacts" / "ckpt" / "best.bin").stat().st_size == 100
    assert "msgspec==" in (run_dir / "requirements.txt").read_text()
    assert (run_dir / "system.jsonl").exists() and (run_dir / "git.json").exists()


#: A job's script: the worker (3.11) starts it with the 3.10 venv's python.
TRAIN = """\
import pathlib, sys, whirr
assert sys.version_info[:2] == (3, 10), sys.version
with whirr.init(name="ignored", config={"seed": 1}, tags=["script"],
                system_metrics=False, capture_git=False, capture_pip=False) as run:
    run.log({"loss": 0.5}, step=0)
    run.log({"loss": 0.25}, step=1)
    pathlib.Path("w.bin").write_bytes(b"0123456789")
    run.save_artifact("w.bin", "best/w.bin")
    run.summary({"loss": 0.25})
print("done", run.run_id, whirr.__file__)
"""


def test_a_job_a_311_worker_runs_with_python_310(venv310: Path, project: Project) -> None:
    (project.root / "train.py").write_text(TRAIN)
    store = project.open_store()
    try:
        job = Jobs(store).submit(
            [str(venv310), "train.py"],
            str(project.root),
            name="job-name",
            config={"lr": 0.1},
            tags=["job"],
        )
    finally:
        store.close()
    worked = run_cli("worker", "--exit-when-empty", "-q", cwd=project.root, timeout=120)
    assert worked.returncode == 0, worked.stderr
    runs = json.loads(run_cli("runs", "--json", cwd=project.root, check=True).stdout)["runs"]
    (run,) = runs
    log = (Path(run["run_dir"]) / "output.log").read_text()
    assert f"done {job.run_id} {venv310.parents[1]}" in log, log
    assert (run["id"], run["status"], run["name"]) == (job.run_id, "completed", "job-name")
    assert run["config"] == {"lr": 0.1, "seed": 1} and run["tags"] == ["job", "script"]
    assert run["summary"] == {"loss": 0.25}
    assert [r["step"] for r in read_metrics(Path(run["run_dir"]))] == [0, 1]
    assert (Path(run["run_dir"]) / "artifacts" / "best" / "w.bin").stat().st_size == 10


DIRECT_ON_SERVER = """\
import pathlib, whirr
pathlib.Path("model.bin").write_bytes(b"0123456789")
with whirr.init(name="direct-310", config={"a": 1}, capture_git=False, capture_pip=False,
                system_metrics=False) as run:
    run.log({"loss": 0.5}, step=0)
    run.summary({"loss": 0.5})
    run.save_artifact("model.bin")
print(run.run_id)
"""


def test_runs_on_python_310_record_on_a_server(venv310: Path, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server")
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(TRAIN)
    try:
        # A direct run that names the server through the environment.
        env = child_env(
            HOME=str(tmp_path / "home"),
            WHIRR_SERVER_URL=server.url,
            WHIRR_TOKEN=server.token or "",
        )
        done = run310(venv310, DIRECT_ON_SERVER, work, env)
        assert done.returncode == 0, done.stderr
        direct_id = done.stdout.strip()
        with WhirrClient(server.url, token=server.token) as client:
            direct = client.get_run(direct_id)
            assert (direct.name, direct.status) == ("direct-310", "completed")
            assert direct.config == {"a": 1} and direct.summary == {"loss": 0.5}
            assert [(a.path, a.size) for a in client.artifacts(direct_id)] == [("model.bin", 10)]

            # A remote worker's job, its script on 3.10.
            job_id = client.submit(
                [str(venv310), "train.py"], str(work), name="job-name", config={"lr": 0.1}
            ).job_id
            worker = start_remote_worker(server, "--exit-when-empty", "-q")
            assert worker.wait(timeout=120) == 0, worker_output(server)
            job = client.get_job(job_id)
            assert job.status == "completed", client.logs(job_id).decode()
            run = client.get_run(job.run_id)
            assert (run.name, run.status) == ("job-name", "completed")
            assert run.config == {"lr": 0.1, "seed": 1} and run.summary == {"loss": 0.25}
            assert [(a.path, a.size) for a in run.artifacts] == [("best/w.bin", 10)]
            log = client.logs(job_id).decode()
            assert "done job-" in log and "could not record" not in log, log
    finally:
        server.stop()


def test_the_whirr_command_refuses_python_310_in_one_line(venv310: Path, tmp_path: Path) -> None:
    whirr = venv310.parent / "whirr"
    for args in (["--version"], ["runs"], ["server", "-d", str(tmp_path / "data")]):
        done = subprocess.run(
            [str(whirr), *args],
            cwd=tmp_path,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("Error: the whirr command") and "Python 3.11+" in lines[0]
        assert "3.10" in lines[0] and "import whirr" in lines[0]
    assert not (tmp_path / "data").exists()
