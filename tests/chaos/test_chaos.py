"""The chaos suite (issue 17): each fault once per worker (Python, Rust) x store backend
(SQLite, PostgreSQL), with a short lease (15 s) and kill grace (1 s).

Real ``whirr server`` processes, real workers, jobs that record when each of their
processes lived (``job.py``). After the fault every job must have completed exactly once,
no two attempts of a job may have been alive at the same time, no process may be left
behind, and the rebuilt views must equal the live ones (``checks.py``). A
failure lists every breach, the trial's steps with their times, its seed (``CHAOS_SEED``
replays the random choices) and the tails of the logs.

Many trials, the default lease and CPU load: ``tools/bench/chaos.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.checks import Report
from chaos.conftest import CI_SETTINGS, trial
from chaos.faults import FAULTS, postgres_restart
from chaos.harness import Chaos
from chaos.postgres import PrivateCluster

WORKERS = ("python", "rust")
BACKENDS = ("sqlite", "postgres")
#: How long the jobs may take to end once the fault is over: a worker that outlives the
#: fault (SIGHUP) runs its job to its end (three leases long), and room for a busy machine.
FINISH = 3 * CI_SETTINGS.lease + 30


def case(fault: str, worker: str, backend: str) -> object:
    marks = [pytest.mark.postgres] if backend == "postgres" else []
    return pytest.param(fault, worker, backend, id=f"{fault}-{worker}-{backend}", marks=marks)


def check(chaos: Chaos, report: Report) -> None:
    if report.problems:
        lines = [f"{len(report.problems)} breach(es):", *report.problems, chaos.context()]
        pytest.fail("\n".join(lines), pytrace=False)


@pytest.mark.parametrize(
    ("fault", "worker", "backend"),
    [case(f, w, b) for b in BACKENDS for w in WORKERS for f in FAULTS],
)
def test_fault(
    request: pytest.FixtureRequest, tmp_path: Path, fault: str, worker: str, backend: str
) -> None:
    url = request.getfixturevalue("shared_cluster").schema_url() if backend == "postgres" else None
    with trial(request, tmp_path, worker, url) as chaos:
        FAULTS[fault](chaos)
        check(chaos, chaos.finish(timeout=FINISH))


@pytest.mark.postgres
@pytest.mark.parametrize("worker", WORKERS, ids=lambda w: f"postgres_restart-{w}-postgres")
def test_postgres_restart(
    request: pytest.FixtureRequest, tmp_path: Path, own_cluster: PrivateCluster, worker: str
) -> None:
    with trial(request, tmp_path, worker, own_cluster.schema_url()) as chaos:
        postgres_restart(chaos, own_cluster)
        check(chaos, chaos.finish(timeout=FINISH))
