"""How a frame of ``whirr watch`` shares a terminal's rows, and how long names are cut to
fit a column. Pure: sizes in, sizes out.

The frame is laid out for 80x24 first: the header, the jobs, the workers, the selected
job's panel and the key help all stay on screen; rows a bigger terminal has to spare go to
more jobs, then to more log lines, then to a worker table instead of a one-line summary.
"""

from __future__ import annotations

from dataclasses import dataclass

from whirr.watch.model import WatchState

#: Lines the jobs table takes besides its rows: its title, column heads and the rule.
JOBS_CHROME = 3
#: The same for the workers table.
WORKERS_CHROME = 3
#: The job panel's borders.
PANEL_CHROME = 2
#: Job rows kept on screen before the panel's log lines are cut below ``log_lines``.
MIN_JOB_ROWS = 8
#: From this height on, the workers get a table (one row each) instead of one line.
WORKER_TABLE_HEIGHT = 32
#: Widest a worker id is shown (ids are ``host-pid`` by default, and hosts get long).
WORKER_WIDTH = 18


@dataclass(frozen=True)
class Layout:
    """Rows given to each part of one frame; ``None`` means as many as there are."""

    job_rows: int | None
    log_lines: int
    #: Worker table rows, or ``None`` for the one-line summary.
    worker_rows: int | None
    #: Blank lines above the key help, so it sits on the last row.
    spare: int = 0


def shown_workers(state: WatchState) -> int:
    """Workers listed one per row (stopped ones are only counted)."""
    return sum(1 for w in state.workers if w.status != "stopped")


def _wanted_log_lines(state: WatchState, log_lines: int) -> int:
    lines = len(state.detail.log_lines) if state.detail is not None else 0
    return max(1, min(log_lines, lines))  # one line says there is no output


def _metric_lines(state: WatchState) -> int:
    return 1 if state.detail is not None and state.detail.metric else 0


def plan(state: WatchState, height: int | None, log_lines: int, keys: bool = True) -> Layout:
    """Rows for each part of a frame ``height`` lines tall (``None``: unbounded, as
    printed by ``--once``)."""
    wanted_log = _wanted_log_lines(state, log_lines)
    table_rows = max(1, shown_workers(state))
    if height is None:
        return Layout(job_rows=None, log_lines=wanted_log, worker_rows=table_rows)
    panel = PANEL_CHROME + _metric_lines(state)
    free = height - 1 - (1 if keys else 0)  # the header, the key help
    worker_rows: int | None = None
    if height >= WORKER_TABLE_HEIGHT:
        worker_rows = min(table_rows, max(2, height // 6))
        free -= WORKERS_CHROME + worker_rows
    else:
        free -= 1
    jobs = max(1, len(state.jobs))
    # Jobs first (down to MIN_JOB_ROWS the log gives way), then the log, then blank rows.
    job_rows = max(min(jobs, MIN_JOB_ROWS), min(jobs, free - JOBS_CHROME - panel - wanted_log))
    job_rows = max(1, min(job_rows, free - JOBS_CHROME - panel - 1))
    log = max(1, min(wanted_log, free - JOBS_CHROME - job_rows - panel))
    spare = max(0, free - JOBS_CHROME - job_rows - panel - log) if keys else 0
    return Layout(job_rows=job_rows, log_lines=log, worker_rows=worker_rows, spare=spare)


def window(top: int, selected: int, rows: int, total: int) -> int:
    """The first row shown of ``total`` when ``rows`` fit: ``top`` moved as little as it
    takes to keep row ``selected`` on screen (as a pager scrolls)."""
    if total <= rows:
        return 0
    top = min(top, selected)
    top = max(top, selected - rows + 1)
    return max(0, min(top, total - rows))


def short_id(worker_id: str, width: int = WORKER_WIDTH) -> str:
    """A worker id cut to ``width``, keeping what tells workers apart: for the default
    ``host-pid``, the host's first label (no domain), its head and tail around an
    ellipsis, and the pid whole; other ids lose their middle."""
    if len(worker_id) <= width:
        return worker_id
    host, dash, pid = worker_id.rpartition("-")
    suffix = dash + pid if dash and pid.isdigit() and host else ""
    host = host if suffix else worker_id
    label = host.split(".", 1)[0]
    if label != host and any(c.isalpha() for c in label):  # a domain name, not an address
        host = label
    if len(host) + len(suffix) <= width:
        return host + suffix
    room = width - len(suffix) - 1
    if room < 4:  # a very long suffix: the id is cut as one string
        host, suffix, room = worker_id, "", width - 1
    head = room - room // 2
    return host[:head] + "…" + host[len(host) - room // 2 :] + suffix
