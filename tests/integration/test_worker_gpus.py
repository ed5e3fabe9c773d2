"""A job computes on exactly the GPUs its worker gave it (issue 17, item 6).

The worker numbers GPUs as NVML and ``nvidia-smi`` do (by PCI bus) and hands a job
``CUDA_VISIBLE_DEVICES`` indices; CUDA numbers devices fastest first unless
``CUDA_DEVICE_ORDER=PCI_BUS_ID``. On a box of mixed models (the fake NVML's ``mixed``
box: a T4 first on the bus, then an A100) a job given GPU 0 would compute on the A100,
another job's GPU, unless the worker sets that order. ``fakes.fake_cuda`` applies CUDA's
rule, so each job says which pretend GPU it really got.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fakes.fake_nvml import MIXED
from server_process import wait_for

from whirr.project import Project
from whirr.services import Jobs

TESTS = Path(__file__).resolve().parents[1]

#: ``whirr worker`` with the fake NVML as ``pynvml`` (so ``--gpus all`` detects the box).
WORKER = [
    sys.executable,
    "-c",
    "import sys, runpy; from fakes import fake_nvml; sys.modules['pynvml'] = fake_nvml; "
    "sys.argv[0] = 'whirr'; runpy.run_module('whirr.cli.main', run_name='__main__')",
    "worker",
]
ENV = {"FAKE_NVML_BOX": "mixed", "PYTHONPATH": str(TESTS), "WHIRR_FAKE_GPUS": ""}


def job(root: Path, *, wait_for_other: bool = True) -> list[str]:
    """A job that records which GPU CUDA gives it as cuda:0, and the order it ran with;
    the two GPU jobs wait for each other so they hold both GPUs at once."""
    both = (
        f"for i in $(seq 600); do [ -e {root}/ready-1 ] && [ -e {root}/ready-2 ] && break; "
        "sleep 0.05; done; "
    )
    return [
        "sh",
        "-c",
        f"touch {root}/ready-$WHIRR_JOB_ID; {both if wait_for_other else ''}"
        f"{sys.executable} -m fakes.fake_cuda > {root}/cuda-$WHIRR_JOB_ID; "
        f'echo "$CUDA_DEVICE_ORDER" > {root}/order-$WHIRR_JOB_ID; '
        f'echo "$CUDA_VISIBLE_DEVICES" > {root}/given-$WHIRR_JOB_ID',
    ]


def test_each_job_computes_on_the_gpu_the_worker_gave_it(project: Project, store) -> None:
    assert [g.name for g in MIXED] == ["Tesla T4", "NVIDIA A100-SXM4-80GB"]
    root = project.root
    jobs = Jobs(store)
    for _ in range(2):
        jobs.submit(job(root), str(root), gpus=1)
    # A job's own explicit order is kept (at its own risk: its indices may then differ).
    jobs.submit(
        job(root, wait_for_other=False),
        str(root),
        gpus=1,
        env={"CUDA_DEVICE_ORDER": "FASTEST_FIRST"},
    )
    with open(root / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [*WORKER, "--gpus", "all", "--exit-when-empty"],
            cwd=root,
            env={**os.environ, **ENV},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    assert worker.wait(timeout=120) == 0, (root / "worker.log").read_text()
    assert "GPUs 0,1" in (root / "worker.log").read_text()  # detected through the fake NVML
    given = {j: (root / f"given-{j}").read_text().strip() for j in (1, 2)}
    assert sorted(given.values()) == ["0", "1"]  # both at once: one GPU each
    for job_id, gpu in given.items():
        got = (root / f"cuda-{job_id}").read_text().strip()
        assert got == MIXED[int(gpu)].uuid, f"job {job_id} given GPU {gpu} computed on {got}"
        assert (root / f"order-{job_id}").read_text().strip() == "PCI_BUS_ID"
    assert (root / "order-3").read_text().strip() == "FASTEST_FIRST"
    wait_for(lambda: jobs.get(3).status == "completed")
