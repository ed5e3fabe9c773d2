"""The parity suite's machinery: places (a local project, a ``whirr server``) where the same
CLI scenarios run, and the normalisers that make their outputs comparable.

A ``Place`` runs the real CLI in a subprocess with a working directory and environment of
its own: a local project (``whirr init``; a local ``whirr worker``), or a directory outside
any project with ``WHIRR_SERVER_URL``/``WHIRR_TOKEN`` naming a real server (a remote
``whirr worker --server --data-dir``). Every scenario runs in every place in table order:
``Place.outcome(i)`` first runs the scenarios before ``i`` that have not run yet, so a
selection (``-k``) still sees the state the earlier scenarios leave.

Normalisers turn an outcome into what must be equal across places: ids that differ by
nature (worker pids, hostnames), times, paths under the place's roots and log positions
are replaced by placeholders; everything else is kept.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from postgres_env import postgres_url_or_skip
from server_process import ServerProcess, wait_for

WHIRR = [sys.executable, "-m", "whirr.cli.main"]
#: Environment variables that would point a command somewhere else than its place.
PLACE_VARS = ("WHIRR_SERVER_URL", "WHIRR_TOKEN", "WHIRR_DATA_DIR", "WHIRR_DATABASE_URL")
JSONValue = object


@dataclass(frozen=True)
class Outcome:
    """What one command did in one place."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    def show(self) -> str:
        return f"$ whirr {' '.join(self.argv)}  (exit {self.rc})\n{self.stdout}{self.stderr}"


class Place(ABC):
    """Somewhere the scenarios run: a working directory and an environment for the CLI,
    and a way to start workers there."""

    name: str
    work: Path
    env: dict[str, str]

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.outcomes: dict[str, Outcome] = {}
        self.done = 0
        self._workers: list[subprocess.Popen[bytes]] = []

    # -- what differs between places ---------------------------------------------------
    @property
    @abstractmethod
    def data(self) -> Path:
        """Where run files go (``<data>/runs/job-N``)."""

    @abstractmethod
    def worker_argv(self, *args: str) -> list[str]:
        """``whirr worker`` for this place."""

    def close(self) -> None:
        for proc in self._workers:
            stop(proc)

    # -- shared ------------------------------------------------------------------------
    def roots(self) -> list[tuple[str, str]]:
        """Path prefixes and their placeholders, longest first."""
        pairs = [(str(self.data), "<data>"), (str(self.work), "<work>"), (str(self.root), "<root>")]
        return sorted(pairs, key=lambda p: -len(p[0]))

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` without the variables that name a place, with this interpreter's
        ``python`` first on PATH (jobs run ``python train.py``, which imports whirr)."""
        env = {k: v for k, v in base.items() if k not in PLACE_VARS}
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        return env

    def whirr(self, *argv: str, timeout: float = 120) -> Outcome:
        """The real CLI, here."""
        result = subprocess.run(
            [*WHIRR, *argv],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Outcome(tuple(argv), result.returncode, result.stdout, result.stderr)

    def start_worker(self, *args: str) -> subprocess.Popen[bytes]:
        """A worker process; its output goes to ``logs/worker-N.log``."""
        n = len(list(self.logs.glob("worker-*.log")))
        with open(self.logs / f"worker-{n}.log", "wb") as log:
            proc = subprocess.Popen(
                self.worker_argv(*args),
                cwd=self.work,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._workers.append(proc)
        return proc

    def run_worker_until_empty(self, worker_id: str, timeout: float = 120) -> None:
        """A worker with ``--exit-when-empty``: returns once it ran every runnable job."""
        proc = self.start_worker("--id", worker_id, "--exit-when-empty", "-q")
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(proc)
            raise AssertionError(
                f"{self.name}: worker still running\n{self.worker_output()}"
            ) from None
        assert code == 0, f"{self.name}: worker exited {code}\n{self.worker_output()}"

    def worker_output(self) -> str:
        logs = sorted(self.logs.glob("worker-*.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)

    def outcome(self, table: Sequence[Scenario], index: int) -> Outcome:
        """Scenario ``index``'s outcome here, running the ones before it first."""
        while self.done <= index:
            scenario = table[self.done]
            self.done += 1  # once only, even if it fails: later scenarios go on from here
            try:
                for action in scenario.before:
                    action(self)
            except (AssertionError, subprocess.SubprocessError) as exc:
                failed = f"{scenario.name}: {getattr(action, '__name__', action)} failed: {exc}"
                self.outcomes[scenario.name] = Outcome(scenario.argv, -1, "", failed)
                continue
            self.outcomes[scenario.name] = self.whirr(*scenario.argv)
        return self.outcomes[table[index].name]


class LocalPlace(Place):
    """A fresh project (``whirr init``) with a local worker."""

    name = "local"

    def __init__(self, root: Path, config: str = "") -> None:
        super().__init__(root)
        self.env = self.environment(dict(os.environ))
        init = self.whirr("init")
        assert init.rc == 0, init.show()
        if config:
            config_path = self.work / ".whirr" / "config.yaml"
            config_path.write_text(config_path.read_text() + config)

    @property
    def data(self) -> Path:
        return self.work / ".whirr"

    def worker_argv(self, *args: str) -> list[str]:
        return [*WHIRR, "worker", *args]


class ServerPlace(Place):
    """A real ``whirr server`` (SQLite in its data dir, or ``database_url``), commands run
    outside any project with ``WHIRR_SERVER_URL`` set, workers with ``--server``."""

    def __init__(self, root: Path, name: str, database_url: str | None = None) -> None:
        super().__init__(root)
        self.name = name
        # Outside any project, so a command that ignored WHIRR_SERVER_URL would fail.
        assert not any((p / ".whirr").is_dir() for p in self.work.parents)
        self.server = ServerProcess(root / "server", database_url=database_url)
        self.env = self.environment(self.server.env)
        self.env["WHIRR_SERVER_URL"] = self.server.url
        if self.server.token:
            self.env["WHIRR_TOKEN"] = self.server.token

    @property
    def data(self) -> Path:
        return self.server.data_dir

    def worker_argv(self, *args: str) -> list[str]:
        return [
            *WHIRR,
            "worker",
            "--server",
            self.server.url,
            "--data-dir",
            str(self.server.data_dir),
            *args,
        ]

    def close(self) -> None:
        super().close()
        self.server.stop()


@contextmanager
def postgres_schema(wanted: bool) -> Iterator[str | None]:
    """A store URL on a fresh schema of the test PostgreSQL server (dropped after), or
    None when not ``wanted`` (SQLite). Skips locally without the server, fails under CI."""
    if not wanted:
        yield None
        return
    import uuid

    import psycopg
    from psycopg import sql

    url = postgres_url_or_skip()
    name = f"parity_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={name}"))
    try:
        yield urlunsplit(parts._replace(query=urlencode(query)))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- actions (run before a scenario's command, in every place) ------------------------
Action = Callable[[Place], None]


def run_worker(worker_id: str) -> Action:
    """Run every runnable job with a worker that exits when the queue is empty."""

    def action(place: Place) -> None:
        place.run_worker_until_empty(worker_id)

    action.__name__ = f"run_worker({worker_id})"
    return action


def start_idle_worker(worker_id: str) -> Action:
    """Start a worker that stays (until drained) and wait until it is registered."""

    def action(place: Place) -> None:
        proc = place.start_worker("--id", worker_id, "-q")

        def registered() -> bool:
            assert proc.poll() is None, f"{place.name}: worker exited\n{place.worker_output()}"
            out = place.whirr("workers", "--json")
            if out.rc != 0:
                return False
            listed = json.loads(out.stdout)
            return any(w.get("id") == worker_id for w in listed.get("workers", []))

        wait_for(registered, timeout=60, interval=0.2)

    return action


def wait_workers_gone(timeout: float = 60) -> Action:
    """Wait until every worker this place started has exited."""

    def action(place: Place) -> None:
        deadline = time.monotonic() + timeout
        for proc in place._workers:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"{place.name}: a worker did not exit\n{place.worker_output()}"
                ) from None

    return action


# -- normalisers ----------------------------------------------------------------------
#: Keys whose values differ by nature between places (not by a bug): their value becomes a
#: placeholder (None stays None, so "has it started" is still compared).
TIME_KEYS = re.compile(
    r"(_at|_time|^time|^timestamp|^created|^started|^ended|^finished|^last_seen|^heartbeat"
    r"|^duration.*|^elapsed.*|^runtime.*|^uptime.*|^age.*|_seconds_ago|^not_before)$"
)
POSITION_KEYS = {"position", "head", "version", "offset", "after", "since", "cursor"}
HOST_KEYS = {"hostname", "host"}
PID_KEYS = {"pid", "pgid"}
#: What a job used (its cgroup's accounting): measured, so never equal twice.
USAGE_KEYS = {"cpu_seconds", "cpu_user_seconds", "cpu_system_seconds", "memory_peak_bytes"}
#: Where a place keeps a run's files (local, shared with a server, shipped), by design.
PLACE_KEYS = {"files_mode", "worker_run_dir", "files_location"}
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?")
CLOCK_TEXT = re.compile(r"\b\d+(\.\d+)?\s?(ms|s|m|h)\b( ago)?")
#: The figures of a ``Used:`` line (``status N``, ``show``), measured as well.
USAGE_TEXT = re.compile(r"\d+(\.\d+)? (user|system|KiB|MiB|GiB|TiB|B)\b")


def scrub_text(text: str, place: Place) -> str:
    """A string with the place's roots, the hostname and wall-clock times replaced."""
    for root, mark in place.roots():
        text = text.replace(root, mark)
    host = socket.gethostname()
    if host:
        text = text.replace(host, "<host>")
    return ISO_TIME.sub("<time>", text)


def scrub(value: JSONValue, place: Place, key: str = "") -> JSONValue:
    """A decoded JSON value with everything that differs by nature replaced."""
    if key in PLACE_KEYS:  # an object too (``show --json``'s ``files_location``)
        return "<place>"
    if isinstance(value, dict):
        return {k: scrub(v, place, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, place, key) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if TIME_KEYS.search(key):
        return "<time>"
    if key in POSITION_KEYS:
        return "<pos>"
    if key in HOST_KEYS:
        return "<host>"
    if key in PID_KEYS:
        return "<pid>"
    if key in USAGE_KEYS:
        return "<measured>"
    if isinstance(value, str):
        return scrub_text(value, place)
    return value


def as_json(outcome: Outcome, place: Place) -> JSONValue:
    """``--json`` output: the decoded document, scrubbed."""
    try:
        doc = json.loads(outcome.stdout)
    except json.JSONDecodeError:
        return {"rc": outcome.rc, "not json": scrub_text(outcome.stdout, place)}
    return {"rc": outcome.rc, "json": scrub(doc, place)}


def as_json_lines(outcome: Outcome, place: Place) -> JSONValue:
    """One JSON document a line (``-o jsonl``), scrubbed."""
    try:
        docs = [json.loads(line) for line in outcome.stdout.splitlines() if line.strip()]
    except json.JSONDecodeError:
        return {"rc": outcome.rc, "not json lines": scrub_text(outcome.stdout, place)}
    return {"rc": outcome.rc, "json": scrub(docs, place)}


def as_text(outcome: Outcome, place: Place) -> JSONValue:
    """Plain output (commands without ``--json``): lines, scrubbed, durations too."""
    out = CLOCK_TEXT.sub("<dur>", scrub_text(outcome.stdout, place))
    lines = [
        USAGE_TEXT.sub(r"<n> \2", line) if line.startswith("Used:") else line
        for line in out.splitlines()
    ]
    return {"rc": outcome.rc, "stdout": lines}


def as_error(outcome: Outcome, place: Place) -> JSONValue:
    """A command that fails: its exit status, and what it says on stdout and stderr."""
    return {
        "rc": outcome.rc,
        "stdout": scrub_text(outcome.stdout, place).splitlines(),
        "stderr": scrub_text(outcome.stderr, place).splitlines(),
    }


def as_keys(outcome: Outcome, place: Place) -> JSONValue:
    """``doctor``/``events``: only the key sets (top level, and of the objects in lists)."""
    docs: list[object] = []
    for line in outcome.stdout.splitlines() or [""]:
        with suppress(json.JSONDecodeError):
            docs.append(json.loads(line))
    if len(docs) != len(outcome.stdout.splitlines()):  # one document over several lines
        try:
            docs = [json.loads(outcome.stdout)]
        except json.JSONDecodeError:
            return {"rc": outcome.rc, "not json": scrub_text(outcome.stdout, place)}
    return {"rc": outcome.rc, "keys": sorted(key_paths(docs))}


def key_paths(value: object, prefix: str = "") -> set[str]:
    """``a``, ``a.b``, ``a[].c``...: the shape of a JSON document without its values."""
    keys: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            keys.add(path)
            keys |= key_paths(v, path)
    elif isinstance(value, list):
        for item in value:
            keys |= key_paths(item, f"{prefix}[]")
    return keys


def as_csv(outcome: Outcome, place: Place) -> JSONValue:
    """CSV output: rows of cells, scrubbed by column name."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(outcome.stdout)))
    if not rows:
        return {"rc": outcome.rc, "csv": []}
    header, body = rows[0], rows[1:]
    records = [dict(zip(header, row, strict=False)) for row in body]
    return {"rc": outcome.rc, "header": header, "csv": scrub(records, place)}


def parquet_file(name: str) -> Callable[[Outcome, Place], JSONValue]:
    """``export -f parquet -o NAME``: the file's rows, scrubbed (stdout too)."""

    def normalise(outcome: Outcome, place: Place) -> JSONValue:
        path = place.work / name
        if outcome.rc != 0 or not path.exists():
            return {"rc": outcome.rc, "stdout": scrub_text(outcome.stdout, place)}
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        rows = json.loads(json.dumps(table.to_pylist(), default=str))
        return {
            "rc": outcome.rc,
            "stdout": as_text(outcome, place)["stdout"],  # type: ignore[index]
            "columns": table.column_names,
            "rows": scrub(rows, place),
        }

    return normalise


@dataclass(frozen=True)
class Scenario:
    """One CLI command of the table: its argv (run in every place), how to normalise its
    outcome, the exit status it must have, and actions to run before it."""

    name: str
    argv: tuple[str, ...]
    normalise: Callable[[Outcome, Place], JSONValue] = as_json
    rc: int = 0
    before: tuple[Action, ...] = field(default=())
