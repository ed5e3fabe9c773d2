"""The tracking library's link to the event log: run started, summary, artifact, finished.

A training script must never die because the database is busy, locked or gone, so every
call here is best effort: a failure is reported once on stderr and the run goes on with
its files (which stay the source of truth for metrics). Without a store (a run outside
any project) nothing is recorded centrally; a remote worker's job records through the
server's HTTP API instead (``whirr.tracking.remote``).
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any, get_args

from whirr.events import RunOutcome
from whirr.projections import RunView

if TYPE_CHECKING:
    from whirr.tracking.location import Location
    from whirr.tracking.remote import RemoteRecorder

OUTCOMES: tuple[str, ...] = get_args(RunOutcome)


def recorder_for(location: Location) -> Recorder | RemoteRecorder:
    """Where the run's events go: the server that runs its job or that a direct run
    named (see ``location``), else its project's store."""
    if location.server_url:
        from whirr.tracking.remote import RemoteRecorder

        return RemoteRecorder(
            location.server_url,
            location.token,
            direct=not location.attached,
            resumed=location.resumed,
            files=location.files,
        )
    return Recorder(location.store)


class Recorder:
    """Appends run events through ``whirr.services.runs.Runs``, never raising."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._runs: Any = None
        self._warned = False
        if store is not None:
            from whirr.services.runs import Runs

            self._runs = Runs(store)

    def view(self, run_id: str) -> RunView | None:
        """What the log knows of ``run_id`` (None without a store or when unknown)."""
        if self._runs is None:
            return None
        view: RunView | None = self._call(self._store.run, run_id)
        return view

    def job(self, job_id: int) -> Any:
        """The job a worker runs this script for (None without a store or when unknown)."""
        if self._runs is None:
            return None
        return self._call(self._store.job, job_id)

    def start(self, run_id: str, run_dir: str, **fields: Any) -> None:
        """Record a RunStarted."""
        if self._runs is not None:
            self._call(self._runs.start, run_id, run_dir, **fields)

    def summary(self, run_id: str, values: dict[str, Any]) -> None:
        """Record a RunSummaryUpdated."""
        if self._runs is not None:
            self._call(self._runs.update_summary, run_id, values)

    def artifact(self, run_id: str, path: str, size: int) -> None:
        """Record a RunArtifactSaved."""
        if self._runs is not None:
            self._call(self._runs.artifact_saved, run_id, path, size)

    def config(self, run_id: str, values: dict[str, Any]) -> None:
        """Record a RunConfigUpdated."""
        if self._runs is not None:
            self._call(self._manage().update_config, run_id, values)

    def tags(self, run_id: str, add: list[str], remove: list[str]) -> None:
        """Record RunTagsAdded / RunTagsRemoved."""
        if self._runs is not None:
            if add:
                self._call(self._manage().add_tags, run_id, add)
            if remove:
                self._call(self._manage().remove_tags, run_id, remove)

    def note(self, run_id: str, text: str, append: bool) -> None:
        """Record a RunNoteSet."""
        if self._runs is not None:
            self._call(self._manage().note, run_id, text, append=append)

    def _manage(self) -> Any:
        from whirr.services.management import Management

        return Management(self._store)

    def finish(
        self, run_id: str, status: str, error: str | None, exit_code: int | None = None
    ) -> None:
        """Record a RunFinished."""
        if self._runs is not None:
            self._call(self._runs.finish, run_id, status, error=error, exit_code=exit_code)

    def close(self, *, in_signal: bool = False) -> None:
        """Release the store."""
        if self._store is not None:
            store, self._store, self._runs = self._store, None, None
            with contextlib.suppress(Exception):
                store.close()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not self._warned:
                self._warned = True
                print(
                    f"whirr: could not record to the project database ({exc}); "
                    "the run's files are still written",
                    file=sys.stderr,
                )
            return None
