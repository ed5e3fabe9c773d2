"""``whirr runs`` and ``whirr show`` through the real CLI; the example script under a
real worker; the GPU path end to end with a FAKE NVML module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from cli_runner import run_cli

from whirr.project import Project
from whirr.run import read_meta, read_metrics, read_system_metrics

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def tracked(project: Project, body: str, env: dict[str, str] | None = None) -> str:
    """Run a tracked child script in the project; returns its run id."""
    code = "import sys, os, whirr\n" + textwrap.dedent(body) + "\nprint(run.run_id)\n"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def make_runs(project: Project) -> list[str]:
    ids = []
    for i, (tags, fail) in enumerate([(["sweep"], False), ([], True), (["sweep"], False)]):
        ids.append(
            tracked(
                project,
                f"""
            run = whirr.init(name="r{i}", config={{"lr": {i}}}, tags={tags!r},
                             system_metrics=False, capture_pip=False)
            for step in range(5):
                run.log({{"loss": 1.0 / (step + 1), "acc": step / 10}}, step=step)
            run.summary({{"best_loss": 0.2}})
            run.finish({'"failed"' if fail else '"completed"'})
        """,
            )
        )
    return ids


def test_runs_lists_newest_first_with_full_ids_and_filters(project: Project) -> None:
    ids = make_runs(project)
    out = run_cli("runs", cwd=project.root, check=True).stdout
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == ids[::-1]  # full ids, newest first
    assert "best_loss=0.2" in out
    data = json.loads(run_cli("runs", "--json", "-t", "sweep", cwd=project.root, check=True).stdout)
    assert [r["id"] for r in data["runs"]] == [ids[2], ids[0]]
    run = data["runs"][0]
    assert {
        "id",
        "job_id",
        "name",
        "config",
        "tags",
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
        "summary",
        "hostname",
        "run_dir",
    } <= set(run)
    failed = json.loads(run_cli("runs", "-s", "failed", "--json", cwd=project.root).stdout)
    assert [r["id"] for r in failed["runs"]] == [ids[1]]
    limited = run_cli("runs", "-n", "1", cwd=project.root, check=True).stdout.splitlines()
    assert len(limited) == 2 and limited[1].startswith(ids[2])
    assert "No runs with status killed" in run_cli("runs", "-s", "killed", cwd=project.root).stdout
    assert run_cli("runs", "-s", "bogus", cwd=project.root).returncode == 2


def test_show_by_prefix_with_config_summary_metrics_git_artifacts(project: Project) -> None:
    subprocess.run(["git", "init", "-q"], cwd=project.root, check=True)
    (project.root / "weights.bin").write_bytes(b"w" * 2048)
    run_id = tracked(
        project,
        """
        run = whirr.init(name="shown", config={"lr": 0.01, "layers": 4}, system_metrics=False,
                         capture_pip=False)
        for step in range(100):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.log({"val_acc": 0.9}, step=99)
        run.summary({"best_loss": 0.01})
        run.save_artifact("weights.bin")
        run.finish()
    """,
    )
    out = run_cli("show", run_id[:-3], cwd=project.root, check=True).stdout
    for expected in (
        run_id,
        "shown",
        "completed",
        "lr",
        "0.01",
        "layers",
        "best_loss",
        "Last metrics (101 rows)",
        "val_acc",
        "0.9",
        "Git:",
        "weights.bin",
        "2.0 KiB",
    ):
        assert expected in out, expected
    data = json.loads(run_cli("show", run_id, "--json", cwd=project.root, check=True).stdout)
    assert data["last_metrics"] == {"step": 99, "loss": 0.01, "val_acc": 0.9}
    assert data["metrics_rows"] == 101 and data["git"]["dirty"] is True
    assert data["artifacts"][0]["path"] == "weights.bin"


def test_show_errors_are_clear(project: Project) -> None:
    make_runs(project)
    ambiguous = run_cli("show", "local-", cwd=project.root)
    assert ambiguous.returncode == 1 and ambiguous.stderr.startswith("Error:")
    assert "several runs" in ambiguous.stderr and "Traceback" not in ambiguous.stderr
    unknown = run_cli("show", "job-404", cwd=project.root)
    # ``job-404`` names job #404 (issue 15: a job ref is accepted wherever its run is meant).
    assert unknown.returncode == 1 and "Error: no job #404" in unknown.stderr
    missing = run_cli("show", "local-nope", cwd=project.root)
    assert missing.returncode == 1 and "Error: no run matches 'local-nope'" in missing.stderr
    assert run_cli("show", cwd=project.root).returncode == 2


def test_example_script_under_a_real_worker(project: Project) -> None:
    example = REPO / "examples" / "train.py"
    run_cli(
        "submit",
        "-n",
        "demo",
        "--",
        sys.executable,
        str(example),
        "--epochs",
        "5",
        cwd=project.root,
        check=True,
    )
    run_cli("worker", "--exit-when-empty", "-q", cwd=project.root, check=True, timeout=120)
    data = json.loads(run_cli("runs", "--json", cwd=project.root, check=True).stdout)["runs"]
    assert len(data) == 1
    run = data[0]
    assert run["id"] == "job-1" and run["job_id"] == 1 and run["name"] == "demo"
    assert run["status"] == "completed" and run["config"]["epochs"] == 5
    assert run["tags"] == ["example"] and run["summary"]["best_loss"] < 1
    run_dir = Path(run["run_dir"])
    assert [r["step"] for r in read_metrics(run_dir)] == list(range(5))
    assert (read_meta(run_dir) or {})["status"] == "completed"
    assert (run_dir / "artifacts" / "model.txt").exists()


def test_fake_gpu_end_to_end_respects_cuda_visible_devices(project: Project) -> None:
    # A FAKE NVML module stands in for pynvml: this machine has no GPU.
    run_id = tracked(
        project,
        f"""
        import time
        sys.path.insert(0, {str(TESTS)!r})
        from fakes import fake_nvml
        sys.modules["pynvml"] = fake_nvml
        run = whirr.init(system_metrics_interval=0.05, capture_pip=False, capture_git=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (run.run_dir / "system.jsonl").exists():
            time.sleep(0.05)
        time.sleep(0.2)
        run.finish()
    """,
        env={"CUDA_VISIBLE_DEVICES": "2,1"},
    )
    rows = read_system_metrics(project.run_dir(run_id))
    assert rows, "no system metrics sampled"
    row = rows[-1]
    assert row["gpu_name"] == "Fake GPU 2" and row["gpu_0_util"] == 30.0
    assert row["gpu_1_name"] == "Fake GPU 1" and "gpu_2_util" not in row
    assert row["gpu_mem_total_gb"] == 80.0 and "cpu_percent" in row
