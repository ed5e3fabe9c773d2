"""The parity suite (issue 15): one table of CLI scenarios, run in a local project with a
local worker and against a real ``whirr server`` (SQLite, PostgreSQL) with a remote
worker; their outputs must be equal once ids, times, hostnames, paths and log positions
are normalised (``doctor`` and ``events`` compared by key set only).

The table runs in order in each place (``parity.Place.outcome``): jobs are submitted with
every scheduling option, run to the end by a worker started with ``--exit-when-empty``,
then read back by every command. One module-scoped place per backend keeps it fast; the
local place runs once and is compared with every server backend.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from parity import (
    LocalPlace,
    Outcome,
    Place,
    Scenario,
    ServerPlace,
    as_csv,
    as_error,
    as_json,
    as_json_lines,
    as_keys,
    as_text,
    parquet_file,
    postgres_schema,
    run_worker,
    start_idle_worker,
    wait_workers_gone,
)

TRAIN = '''\
"""Logs a few metrics and a summary: the same numbers wherever it runs."""
import argparse
import json

import whirr

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.5)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--cfg")
args = parser.parse_args()
lr = args.lr
if args.cfg:
    with open(args.cfg) as fh:
        lr = json.load(fh)["lr"]
with whirr.init(config={"lr": lr}) as run:
    for step in range(5):
        loss = round(1 / (1 + step * lr) + args.seed / 100, 6)
        run.log({"loss": loss, "acc": step / 4}, step=step)
    run.summary({"best_loss": round(1 / (1 + 4 * lr) + args.seed / 100, 6)})
print(f"trained with lr={lr} seed={args.seed}")
'''

SWEEP = """\
name: lr-sweep
program: python train.py
method: grid
metric: {name: loss, goal: minimize}
submit: {gpus: 0}
parameters:
  lr: [0.1, 0.4]
"""

# A job that fails its first attempt and passes its second (a retry).
FLAKY = "test -e flaky.once || { touch flaky.once; echo first attempt fails; exit 1; }; echo ok"

ABLATE_RUN = ("ablate", "run", "toy", "--gpus", "0", "--", "python", "train.py")


def submit(name: str, *options: str, command: tuple[str, ...]) -> tuple[str, ...]:
    return ("submit", "-n", name, *options, "--json", "--", *command)


TABLE: list[Scenario] = [
    # -- submit with every option (jobs #1-#9) --------------------------------------------
    Scenario(
        "submit-every-option",
        submit(
            "train-a",
            *("-t", "exp,lr", "--gpus", "0", "-p", "5", "--retries", "1"),
            *("--timeout", "10m", "--max-attempts", "2"),
            command=("python", "train.py", "--lr", "0.5"),
        ),
    ),
    Scenario(
        "submit-after",
        submit(
            "train-b", "--gpus", "0", "--after", "1", command=("python", "train.py", "--lr", "0.25")
        ),
    ),
    Scenario(
        "submit-failing",
        submit("fails", "-t", "exp", "--gpus", "0", command=("sh", "-c", "echo oops; exit 3")),
    ),
    Scenario(
        "submit-after-a-failure",
        submit("skipped", "--gpus", "0", "--after", "3", command=("true",)),
    ),
    Scenario(
        "submit-after-any",
        submit(
            "cleanup",
            *("--gpus", "0", "--after", "#3", "--after-any"),
            command=("sh", "-c", "echo cleaning up"),
        ),
    ),
    Scenario(
        "submit-timeout",
        submit("too-slow", "--gpus", "0", "--timeout", "1s", command=("sleep", "30")),
    ),
    Scenario(
        "submit-retries",
        submit("flaky", "--gpus", "0", "-p", "9", "--retries", "1", command=("sh", "-c", FLAKY)),
    ),
    Scenario("submit-to-cancel", submit("cancel-me", "--gpus", "0", command=("true",))),
    Scenario("submit-low", submit("low", "--gpus", "0", command=("echo", "low"))),
    # -- the queue before any worker --------------------------------------------------------
    Scenario("status-active", ("status", "--json")),
    Scenario("status-one", ("status", "1", "--json")),
    Scenario("status-job-ref", ("status", "job-2", "--json")),
    Scenario("cancel", ("cancel", "8"), as_text),
    Scenario("retry-cancelled", ("retry", "#8"), as_text),  # job #10
    Scenario("priority", ("priority", "9", "20"), as_text),
    Scenario("queue-pause", ("queue", "pause", "-r", "maintenance"), as_text),
    Scenario("queue-paused", ("queue", "--json")),
    Scenario("queue-resume", ("queue", "resume"), as_text),
    Scenario("queue-resumed", ("queue", "--json")),
    Scenario("status-all-queued", ("status", "--all", "--json")),
    # -- run everything, then read it back ------------------------------------------------
    Scenario("status-all-finished", ("status", "--all", "--json"), before=(run_worker("parity"),)),
    Scenario("status-failed", ("status", "-s", "failed", "--json")),
    Scenario("status-retried", ("status", "7", "--json")),
    Scenario("logs", ("logs", "1"), as_text),
    Scenario("logs-failed", ("logs", "job-3"), as_text),
    Scenario("logs-retried", ("logs", "7"), as_text),
    Scenario("logs-tail", ("logs", "5", "-n", "1"), as_text),
    Scenario("logs-follow-ended", ("logs", "2", "-f"), as_text),
    Scenario("runs", ("runs", "--json")),
    Scenario("runs-failed", ("runs", "-s", "failed", "--json")),
    Scenario("runs-tag", ("runs", "-t", "exp", "--json")),
    Scenario("runs-where", ("runs", "--where", "summary.best_loss < 0.4", "--json")),
    Scenario("runs-sort", ("runs", "--sort", "summary.best_loss", "-n", "3", "--json")),
    Scenario("show", ("show", "job-1", "--json")),
    Scenario("show-job-number", ("show", "2", "--json")),
    Scenario("status-missing", ("status", "99", "--json"), as_error, rc=1),
    Scenario("show-missing", ("show", "job-99", "--json"), as_error, rc=1),
    Scenario("logs-missing", ("logs", "#99"), as_error, rc=1),
    Scenario("retry-completed", ("retry", "1"), as_error, rc=1),
    Scenario("cancel-none-queued", ("cancel", "--all-queued"), as_text),
    # -- analytics ----------------------------------------------------------------------------
    Scenario("compare", ("compare", "job-1", "job-2", "--json")),
    Scenario("compare-csv", ("compare", "1", "2", "-m", "loss", "-o", "csv"), as_csv),
    Scenario("export-csv", ("export", "-f", "csv"), as_csv),
    Scenario("export-json", ("export", "-f", "json")),
    Scenario("export-metrics-csv", ("export", "--metrics", "-m", "loss", "-f", "csv"), as_csv),
    Scenario(
        "export-parquet",
        ("export", "-f", "parquet", "-o", "runs.parquet"),
        parquet_file("runs.parquet"),
    ),
    Scenario(
        "sql",
        ("sql", "select id, status, name from runs order by id", "-o", "jsonl"),
        as_json_lines,
    ),
    # -- workers --------------------------------------------------------------------------------
    Scenario("workers", ("workers", "--all", "--json")),
    Scenario("drain", ("drain", "drainee"), as_text, before=(start_idle_worker("drainee"),)),
    Scenario(
        "workers-drained",
        ("workers", "--all", "--json"),
        before=(wait_workers_gone(),),
    ),
    # -- the log and the checks (key sets only) -------------------------------------------------
    # A job's stream and one event type hold the same events in both places (a remote
    # worker's idle `worker.seen` events do not), so their key sets must match.
    Scenario("events-stream", ("events", "--json", "--stream", "job-1", "--after", "0"), as_keys),
    Scenario("events-type", ("events", "--json", "--type", "job.finished", "-n", "50"), as_keys),
    Scenario("doctor", ("doctor", "--json"), as_keys),
    # -- sweeps and ablations (jobs #11-#16) ------------------------------------------------------
    Scenario("sweep-run", ("sweep", "run", "sweep.yaml", "--json")),
    Scenario("sweeps", ("sweeps", "--json"), before=(run_worker("parity-sweep"),)),
    Scenario("sweep-status", ("sweep", "status", "lr-sweep", "--json")),
    Scenario(
        "ablate-init",
        ("ablate", "init", "toy", "-m", "loss", "-r", "2", "--seed-base", "1"),
        as_text,
    ),
    Scenario("ablate-baseline", ("ablate", "baseline", "toy", "lr=0.5"), as_text),
    Scenario("ablate-add", ("ablate", "add", "toy", "lr=0.1", "-n", "slower"), as_text),
    Scenario(
        "ablate-run",
        (*ABLATE_RUN, "--seed", "{{seed}}", "--cfg", "{{cfg_path}}"),
        as_text,
    ),
    Scenario(
        "ablate-rank", ("ablate", "rank", "toy", "--json"), before=(run_worker("parity-ablate"),)
    ),
    Scenario("ablate-list", ("ablate", "list", "--json")),
]


def prepare(place: Place) -> Place:
    (place.work / "train.py").write_text(TRAIN)
    (place.work / "sweep.yaml").write_text(SWEEP)
    return place


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlace]:
    place = LocalPlace(tmp_path_factory.mktemp("local"))
    prepare(place)
    yield place
    place.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPlace]:
    with postgres_schema(request.param == "postgres") as database_url:
        place = ServerPlace(tmp_path_factory.mktemp(request.param), request.param, database_url)
        prepare(place)
        yield place
        place.close()


@pytest.mark.slow
@pytest.mark.parametrize("index", [pytest.param(i, id=s.name) for i, s in enumerate(TABLE)])
def test_parity(local: LocalPlace, server: ServerPlace, index: int) -> None:
    scenario = TABLE[index]
    here = local.outcome(TABLE, index)
    assert here.rc == scenario.rc, f"local: {here.show()}"
    there = server.outcome(TABLE, index)
    expected = scenario.normalise(here, local)
    actual = scenario.normalise(there, server)
    if actual != expected:
        diff = "\n".join(
            difflib.unified_diff(
                _lines(expected), _lines(actual), "local", server.name, lineterm="", n=2
            )
        )
        raise AssertionError(
            f"{scenario.name}: {server.name} differs from local\n{diff}\n\n"
            f"-- local:\n{here.show()}\n-- {server.name}:\n{there.show()}"
        )


def _lines(value: object) -> list[str]:
    return json.dumps(value, indent=1, sort_keys=True, default=str).splitlines()


def test_the_table_covers_every_command_the_issue_names() -> None:
    named = {
        "submit", "status", "logs", "cancel", "retry", "runs", "show", "compare", "export",
        "sql", "sweep", "sweeps", "ablate", "queue", "priority", "drain", "workers", "events",
        "doctor",
    }  # fmt: skip
    assert named <= {s.argv[0] for s in TABLE}
    assert {"csv", "json", "parquet"} <= {
        s.argv[s.argv.index("-f") + 1] for s in TABLE if s.argv[0] == "export"
    }
    assert len({s.name for s in TABLE}) == len(TABLE)


def test_the_normalisers_keep_what_must_match(tmp_path: Path) -> None:
    """Only what differs by nature is normalised: a different status, exit code, name or
    metric still shows; times, paths under the place, hostnames and positions do not."""
    a, b = FakePlace(tmp_path / "a"), FakePlace(tmp_path / "b")

    def job(root: Path, **fields: object) -> Outcome:
        doc = {
            "id": 1,
            "status": "completed",
            "exit_code": 0,
            "created_at": "2026-01-01T00:00:00.1Z",
            "run_dir": f"{root}/data/runs/job-1",
            "hostname": "node-a",
            "position": 12,
            "summary": {"loss": 0.5},
            **fields,
        }
        return Outcome(("status", "1", "--json"), 0, json.dumps(doc), "")

    same = as_json(job(b.root, created_at="2027-02-02T01:02:03Z", hostname="b", position=40), b)
    assert same == as_json(job(a.root), a)
    for change in ({"status": "failed"}, {"exit_code": 1}, {"summary": {"loss": 0.6}}):
        assert as_json(job(b.root, **change), b) != as_json(job(a.root), a), change
    assert as_json(job(b.root, run_dir="/elsewhere/runs/job-1"), b) != as_json(job(a.root), a)
    assert as_keys(job(b.root, extra=1), b) != as_keys(job(a.root), a)
    assert as_keys(job(b.root, status="failed"), b) == as_keys(job(a.root), a)


class FakePlace(Place):
    """A place that runs nothing: roots for the normalisers."""

    name = "fake"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.env = {}

    @property
    def data(self) -> Path:
        return self.root / "data"

    def worker_argv(self, *args: str) -> list[str]:
        raise AssertionError("a fake place starts no worker")
