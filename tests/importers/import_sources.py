"""Real MLflow, TensorBoard (tensorboardX) and W&B (offline) runs, written by those
libraries in a subprocess of the test (a clean interpreter: MLflow and wandb keep global
state, and wandb starts a helper process that must end with the script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: Longest a writer script may take (importing mlflow alone takes seconds on a busy CI).
WRITE_TIMEOUT_S = 120

MLFLOW_SCRIPT = r"""
import json, os, sys
import mlflow
from mlflow.tracking import MlflowClient

uri, artifact_root = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
exp = mlflow.create_experiment("baseline", artifact_location=artifact_root)
out = {}
with open("weights.bin", "wb") as f:
    f.write(bytes(range(256)) * 8)
with mlflow.start_run(experiment_id=exp, run_name="good") as run:
    mlflow.log_params({"lr": "0.01", "layers": 4, "optimizer": "adam"})
    t0 = 1_700_000_000_000
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=t0 + step * 1000)
        if step % 2 == 0:
            mlflow.log_metric("acc", step / 10, step=step, timestamp=t0 + step * 1000 + 5)
    mlflow.set_tag("team", "vision")
    mlflow.log_artifact("weights.bin", artifact_path="ckpt")
    out["good"] = run.info.run_id
with mlflow.start_run(experiment_id=exp, run_name="broken") as run:
    mlflow.log_param("lr", "0.5")
    mlflow.log_metric("grad_norm", 3.0)  # no step: MLflow's step 0, twice
    mlflow.log_metric("grad_norm", float("nan"))
    out["broken"] = run.info.run_id
    mlflow.end_run(status="FAILED")
with mlflow.start_run(experiment_id=exp, run_name="deleted") as run:
    out["deleted"] = run.info.run_id
MlflowClient().delete_run(out["deleted"])
client = MlflowClient()
out["times"] = {
    name: [client.get_run(out[name]).info.start_time, client.get_run(out[name]).info.end_time]
    for name in ("good", "broken")
}
print(json.dumps(out))
"""

TENSORBOARD_SCRIPT = r"""
import json, struct, sys
from tensorboardX import SummaryWriter

logdir = sys.argv[1]
writer = SummaryWriter(logdir=logdir + "/seed1")
for step in range(4):
    writer.add_scalar("train/loss", 1.0 / (step + 1), step, walltime=1_600_000_000 + step)
writer.add_scalar("val/acc", 0.75, 3, walltime=1_600_000_010)
writer.add_text("notes", "not a scalar", 0)
writer.close()
# TF2's shape (tf.summary.scalar): a scalar tensor of the scalars plugin, not a
# simple_value; built with tensorboardX's own protobuf classes, written by its writer.
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboardX.proto.tensor_pb2 import TensorProto

writer = SummaryWriter(logdir=logdir + "/seed2")
plugin = SummaryMetadata.PluginData(plugin_name="scalars")
for step in range(3):
    tensor = TensorProto(dtype=1, float_val=[2.0 - step])  # DT_FLOAT
    value = Summary.Value(tag="train/loss", tensor=tensor,
                          metadata=SummaryMetadata(plugin_data=plugin))
    writer.file_writer.add_summary(Summary(value=[value]), step, 1_600_000_100 + step)
tensor = TensorProto(dtype=2, tensor_content=struct.pack("<d", 0.5))  # DT_DOUBLE, packed
value = Summary.Value(tag="val/acc", tensor=tensor, metadata=SummaryMetadata(plugin_data=plugin))
writer.file_writer.add_summary(Summary(value=[value]), 2, 1_600_000_103)
writer.close()
print(json.dumps({"runs": ["seed1", "seed2"]}))
"""

WANDB_SCRIPT = r"""
import json, sys
import wandb

out = {}
run = wandb.init(project="cifar", name="wide", config={"lr": 0.1, "model": {"depth": 3}},
                 tags=["resnet"])
for step in range(3):
    run.log({"loss": 1.0 / (step + 1), "acc": step / 10})
run.log({"loss": 0.05}, step=10)
run.summary["best_acc"] = 0.9
out["wide"] = run.id
run.finish()
run = wandb.init(project="cifar", name="crashy", config={"lr": 1.0})
run.log({"loss": 9.0})
out["crashy"] = run.id
run.finish(exit_code=3)
print(json.dumps(out))
"""


def _write(script: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=WRITE_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_mlflow(tracking_uri: str, artifact_root: Path, cwd: Path) -> dict[str, Any]:
    """The MLflow scenario in the store at ``tracking_uri``: run ids by name, times."""
    artifact_root.mkdir(parents=True, exist_ok=True)
    env = {"MLFLOW_ALLOW_FILE_STORE": "true", "GIT_PYTHON_REFRESH": "quiet"}
    out: dict[str, Any] = _write(
        MLFLOW_SCRIPT, tracking_uri, artifact_root.as_uri(), cwd=cwd, env=env
    )
    return out


def write_tensorboard(logdir: Path) -> dict[str, Any]:
    """Two runs of scalars under ``logdir`` (``seed1`` simple values, ``seed2`` tensors)."""
    out: dict[str, Any] = _write(TENSORBOARD_SCRIPT, str(logdir), cwd=logdir.parent)
    return out


def write_wandb(directory: Path) -> dict[str, Any]:
    """Two offline W&B runs under ``directory/wandb``: ``wide`` ends well, ``crashy``
    with exit code 3. Offline: no network, no account."""
    env = {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(directory),
        "WANDB_SILENT": "true",
        "WANDB_DISABLE_GIT": "true",
        "WANDB_CONFIG_DIR": str(directory / ".config"),
        "WANDB_CACHE_DIR": str(directory / ".cache"),
    }
    out: dict[str, Any] = _write(WANDB_SCRIPT, cwd=directory, env=env)
    return out


def new_project(root: Path) -> Path:
    """A fresh whirr project at ``root``."""
    from cli_runner import run_cli

    root.mkdir(parents=True, exist_ok=True)
    run_cli("init", cwd=root, check=True)
    return root


def import_into(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``whirr import ARGS...`` in ``project`` (the real CLI, in a subprocess)."""
    from cli_runner import run_cli

    return run_cli("import", *args, cwd=project, timeout=WRITE_TIMEOUT_S)


def runs_by_name(project: Path) -> dict[str, dict[str, Any]]:
    """``whirr runs --json`` of ``project``, by run name."""
    from cli_runner import run_cli

    listed = json.loads(run_cli("runs", "--json", "-n", "1000", cwd=project, check=True).stdout)
    return {run["name"]: run for run in listed["runs"]}


def metric_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The lines of a run's ``metrics.jsonl``."""
    text = (Path(run["run_dir"]) / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def event_count(project: Path) -> int:
    """How many events the project's log holds."""
    from cli_runner import run_cli

    out = run_cli("events", "--json", "-n", "100000", cwd=project, check=True).stdout
    return len(out.splitlines())
