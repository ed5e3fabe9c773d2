"""``whirr.init()`` and ``Run``: what a training script holds while it runs."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import msgspec

from whirr.clock import UTC
from whirr.filemodes import private_dir, write_private
from whirr.run import read_meta, write_meta
from whirr.tracking import lifecycle
from whirr.tracking.location import Location, locate
from whirr.tracking.metrics import MetricsWriter, to_json_value
from whirr.tracking.recorder import OUTCOMES, recorder_for
from whirr.tracking.repro import GitCapture, requirements
from whirr.tracking.run_config import RunConfig, plain_tags
from whirr.tracking.system import DEFAULT_INTERVAL_S, SystemSampler

_encode = msgspec.json.Encoder(enc_hook=to_json_value).encode
_pretty = msgspec.json.format
#: How long finish() waits for the background requirements capture.
_PIP_WAIT_S = 10.0


def plain(values: Any, what: str) -> dict[str, Any]:
    """``values`` as a JSON-ready dict (numpy scalars and tensors become numbers)."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        if hasattr(values, "__dict__"):  # argparse.Namespace, simple objects
            values = vars(values)
        else:
            raise TypeError(f"{what} must be a dict, not {type(values).__name__}")
    try:
        out: dict[str, Any] = msgspec.json.decode(_encode(dict(values)))
    except TypeError as exc:
        for key, value in values.items():
            try:
                _encode(value)
            except TypeError as inner:
                raise TypeError(f"{what} {key!r}: {inner}") from None
        raise TypeError(f"{what}: {exc}") from None
    return out


class Run:
    """A tracked run. Create it with ``whirr.init()``; see ``docs/python-api.md``."""

    def __init__(
        self,
        location: Location,
        *,
        name: str | None = None,
        config: Any = None,
        tags: Iterable[str] | None = None,
        system_metrics: bool = True,
        system_metrics_interval: float = DEFAULT_INTERVAL_S,
        capture_pip: bool = True,
        git_capture: GitCapture | None = None,
    ) -> None:
        self._loc = location
        self._pid = os.getpid()
        self._dir = location.run_dir
        private_dir(self._dir)  # 0700 (whirr.filemodes): the run's files are the owner's
        private_dir(self._dir / "artifacts")
        self._recorder = recorder_for(location)
        self._lock = threading.RLock()  # finish() may run inside a signal handler
        self._finished = False
        self._status = "running"
        self._pip_thread: threading.Thread | None = None
        previous = read_meta(self._dir) or {}
        known: Any = self._recorder.view(location.run_id)
        if known is None and location.attached and location.job_id is not None:
            # The worker records the run's start just after spawning us; should we be
            # quicker, the job itself has the same name, config and tags.
            known = self._recorder.job(location.job_id)

        self._config = plain(config, "config")
        self._config_view: RunConfig | None = None
        self._tags = [str(t) for t in (tags or ())]
        self._name = name
        if location.attached:
            # The job's run: its name wins, config and tags merge over the job's.
            job_name = (known.name if known else None) or previous.get("name")
            self._name = job_name or name
            job_config = known.config if known else _read_json(self._dir / "config.json")
            self._config = {**job_config, **self._config}
            job_tags = known.tags if known else list(previous.get("tags") or [])
            self._tags = list(dict.fromkeys([*job_tags, *self._tags]))
        elif previous:  # resuming a direct run
            self._name = name or previous.get("name")
            self._tags = self._tags or list(previous.get("tags") or [])
            self._config = {**_read_json(self._dir / "config.json"), **self._config}
        self._summary: dict[str, Any] = dict(previous.get("summary") or {})
        self._started_at = _parse_time(previous.get("started_at")) or datetime.now(UTC)

        self._git: dict[str, Any] | None = None
        if git_capture is not None:
            self._git, diff = _collect_git(git_capture)
            if self._git is not None:
                write_private(self._dir / "git.json", _pretty(_encode(self._git), indent=2))
                if diff:
                    write_private(self._dir / "diff.patch", diff)
        write_private(self._dir / "config.json", _pretty(_encode(self._config), indent=2))

        self._writer = MetricsWriter(self._dir / "metrics.jsonl")
        # The hot path: run.log is the writer's method itself, no extra call layer.
        self.log = self._writer.write  # type: ignore[method-assign]
        self._write_meta()
        self._recorder.start(
            location.run_id,
            str(self._dir),
            name=self._name,
            job_id=location.job_id,
            config=self._config,
            tags=self._tags,
            pid=os.getpid(),
            git=self._git,
        )
        self._sampler: SystemSampler | None = None
        if system_metrics:
            self._sampler = SystemSampler(self._dir / "system.jsonl", system_metrics_interval)
            self._sampler.start()
        lifecycle.track(self)
        # Last, so its ~0.1 s of metadata reading does not compete with init() for the GIL.
        self._pip_thread = _start_requirements(self._dir) if capture_pip else None

    # -- properties -------------------------------------------------------------
    @property
    def run_id(self) -> str:
        """The run's id: ``job-<n>`` inside a queued job, ``local-...`` for a direct run."""
        return self._loc.run_id

    @property
    def run_dir(self) -> Path:
        """The directory holding the run's files."""
        return self._dir

    @property
    def name(self) -> str:
        """The run's name (its id when none was given)."""
        return self._name or self.run_id

    @property
    def config(self) -> RunConfig:
        """The run's configuration: a dict whose changes are recorded (``run.config["b"]
        = 2``, ``run.config.update(...)``: ``config.json`` and the run's view follow)."""
        if self._config_view is None:
            self._config_view = RunConfig(self._config, self._config_changed)
        return self._config_view

    @property
    def tags(self) -> list[str]:
        """The run's tags (a copy: change them with ``add_tags``/``remove_tags``)."""
        return list(self._tags)

    @property
    def job_id(self) -> int | None:
        """The queued job this run belongs to, or None for a direct run."""
        return self._loc.job_id

    @property
    def status(self) -> str:
        """``running`` until finished, then how it ended."""
        return self._status

    # -- recording ----------------------------------------------------------------
    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Append one row to ``metrics.jsonl``; durable (against the process dying) when it
        returns. Values: numbers, bools, strings, numpy scalars, 0-d tensors; NaN/inf are
        written as null. ``step`` must be an int. Raises RuntimeError after ``finish()``."""
        self._writer.write(metrics, step)  # replaced per instance by the writer's method

    def _config_changed(self, changes: dict[str, Any]) -> dict[str, Any]:
        clean = plain(changes, "config value")
        with self._lock:
            self._check_open("config changes")
            self._config.update(clean)
            write_private(self._dir / "config.json", _pretty(_encode(self._config), indent=2))
        self._recorder.config(self.run_id, clean)
        return clean

    def add_tags(self, *tags: str) -> None:
        """Add tags to the run (ones it has are kept once); recorded at once."""
        added = [t for t in plain_tags(tags) if t not in self._tags]
        with self._lock:
            self._check_open("add_tags()")
            if not added:
                return
            self._tags.extend(added)
            self._write_meta()
        self._recorder.tags(self.run_id, added, [])

    def remove_tags(self, *tags: str) -> None:
        """Remove tags from the run; recorded at once."""
        gone = [t for t in plain_tags(tags) if t in self._tags]
        with self._lock:
            self._check_open("remove_tags()")
            if not gone:
                return
            self._tags = [t for t in self._tags if t not in gone]
            self._write_meta()
        self._recorder.tags(self.run_id, [], gone)

    def note(self, text: str, *, append: bool = False) -> None:
        """Set the run's note (shown by ``whirr show``), or with ``append`` add ``text``
        to it as a new paragraph."""
        if not isinstance(text, str):
            raise TypeError(f"a note is text, not {type(text).__name__}")
        with self._lock:
            self._check_open("note()")
        self._recorder.note(self.run_id, text, append)

    def summary(self, values: dict[str, Any]) -> None:
        """Merge ``values`` into the run's summary (``meta.json`` and the run list)."""
        clean = plain(values, "summary value")
        with self._lock:
            self._check_open("summary()")
            self._summary.update(clean)
            self._write_meta()
        self._recorder.summary(self.run_id, clean)

    def save_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """Copy a file or directory into ``artifacts/`` as ``name`` (default: its own
        name); returns where it now is. ``name`` may hold subdirectories but cannot leave
        ``artifacts/``."""
        source = Path(path)
        if not source.exists():
            raise FileNotFoundError(f"no file to save as an artifact: {source}")
        rel = _artifact_name(name if name is not None else source.name)
        with self._lock:
            self._check_open("save_artifact()")
        dest = self._dir / "artifacts" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        if source.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp)
            if dest.is_dir():
                shutil.rmtree(dest)
            size = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
            for copied in (tmp, *tmp.rglob("*")):
                _owner_only(copied)
        else:
            shutil.copy2(source, tmp)
            size = tmp.stat().st_size
            _owner_only(tmp)
        os.replace(tmp, dest)  # readers see the old artifact or the new one, never half
        self._recorder.artifact(self.run_id, rel, size)
        return dest

    def finish(self, status: str = "completed", error: str | None = None) -> None:
        """End the run (idempotent); later ``log()`` calls raise RuntimeError. ``status``:
        completed (default), failed, killed, cancelled, timed_out or crashed."""
        if status not in OUTCOMES:
            raise ValueError(f"status must be one of {', '.join(OUTCOMES)}, not {status!r}")
        self._end(status, error)

    # -- ending --------------------------------------------------------------------
    def _end(
        self,
        status: str,
        error: str | None,
        *,
        in_signal: bool = False,
        exit_code: int | None = None,
    ) -> None:
        if os.getpid() != self._pid:
            return  # a forked child (DataLoader worker): the run belongs to its parent
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self._status = status
            if in_signal:
                self._writer.seal()  # an interrupted log() on this thread may hold the fd
            else:
                self._writer.close()
            if self._sampler is not None:
                self._sampler.stop(timeout=0.5 if in_signal else 2.0)
            if self._pip_thread is not None and not in_signal:
                self._pip_thread.join(_PIP_WAIT_S)
            self._write_meta(finished_at=datetime.now(UTC), error=error)
        lifecycle.untrack(self)
        if not self._loc.attached:
            # Inside a job the worker records the true end (exit code, cancel, timeout).
            self._recorder.finish(self.run_id, status, error, exit_code)
        self._recorder.close(in_signal=in_signal)

    def _check_open(self, what: str) -> None:
        if self._finished:
            raise RuntimeError(f"{what} on a finished run ({self.run_id})")

    def _write_meta(self, finished_at: datetime | None = None, error: str | None = None) -> None:
        meta: dict[str, Any] = {
            "id": self.run_id,
            "name": self.name,
            "tags": self._tags,
            "status": self._status,
            "started_at": _iso(self._started_at),
            "finished_at": _iso(finished_at) if finished_at else None,
            "duration_seconds": (
                round((finished_at - self._started_at).total_seconds(), 3) if finished_at else None
            ),
            "summary": self._summary,
            "config_file": "config.json",
            "metrics_file": "metrics.jsonl",
            "artifacts_dir": "artifacts",
            "git": self._git,
            "job_id": self._loc.job_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "error": error,
        }
        write_meta(self._dir, meta)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        status, error = lifecycle.outcome_of(exc)
        # the exception, if any, propagates
        self._end(status, error, exit_code=lifecycle.exit_code_of(exc))

    def __repr__(self) -> str:
        return f"<whirr.Run {self.run_id} {self._status}>"


def init(
    name: str | None = None,
    config: Any = None,
    tags: Iterable[str] | None = None,
    system_metrics: bool = True,
    capture_git: bool = True,
    capture_pip: bool = True,
    *,
    system_metrics_interval: float = DEFAULT_INTERVAL_S,
    resume: str | None = None,
    server: str | None = None,
) -> Run:
    """Start (or, inside a worker's job, attach to) a tracked run; see ``docs/python-api.md``.

    ``resume`` continues an earlier direct run by id: its metrics keep counting from where
    they stopped. ``server`` records a direct run on that whirr server (default:
    ``WHIRR_SERVER_URL``, else the project around the working directory); inside a
    worker's job the worker decides."""
    # Started first: the git commands run while the project and its store are opened.
    git = _start_git() if capture_git else None
    location = None
    try:
        location = locate(resume=resume, server=server)
        return Run(
            location,
            name=name,
            config=config,
            tags=[tags] if isinstance(tags, str) else tags,
            system_metrics=system_metrics,
            system_metrics_interval=system_metrics_interval,
            capture_pip=capture_pip,
            git_capture=git,
        )
    except BaseException:
        if location is not None and location.store is not None:
            location.store.close()
        if git is not None:
            git.result()  # reap the git processes
        raise


def _artifact_name(name: str) -> str:
    """A relative POSIX path that stays inside ``artifacts/``, or ``ValueError``."""
    text = str(name).replace("\\", "/")
    parts = PurePosixPath(text).parts
    if not text or text.startswith("/") or not parts or any(p in ("..", ".") for p in parts):
        raise ValueError(f"artifact name {name!r} must be a relative path inside artifacts/")
    return "/".join(parts)


def _start_git() -> GitCapture | None:
    try:
        return GitCapture(Path.cwd())
    except Exception as exc:  # reproducibility is a bonus; never stop the run for it
        print(f"whirr: git capture skipped: {exc}", file=sys.stderr)
        return None


def _collect_git(capture: GitCapture) -> tuple[dict[str, Any] | None, bytes]:
    try:
        return capture.result()
    except Exception as exc:
        print(f"whirr: git capture skipped: {exc}", file=sys.stderr)
        return None, b""


def _start_requirements(run_dir: Path) -> threading.Thread:
    """Write ``requirements.txt`` on a thread: reading every distribution's metadata
    takes about 0.1 s, which ``init()`` should not wait for."""

    def work() -> None:
        try:
            text = requirements()
            tmp = run_dir / ".requirements.txt.tmp"
            write_private(tmp, text.encode())
            os.replace(tmp, run_dir / "requirements.txt")
        except Exception as exc:
            print(f"whirr: requirements capture skipped: {exc}", file=sys.stderr)

    thread = threading.Thread(target=work, name="whirr-requirements", daemon=True)
    thread.start()
    return thread


def _owner_only(path: Path) -> None:
    """Drop the group and other bits a copy took from its source (``copy2`` keeps the
    mode): a run's files are its owner's only (``whirr.filemodes``)."""
    if not path.is_symlink():
        mode = path.stat().st_mode
        if mode & 0o077:
            os.chmod(path, mode & 0o700)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(path.read_bytes())
    except (FileNotFoundError, msgspec.DecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
