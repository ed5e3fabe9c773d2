"""Drawing a ``WatchState`` with rich: a pure function of the state and the screen's size
(``whirr.watch.layout`` shares out the rows), so a test can render a frame to text
(``render_text``) and compare it with a snapshot."""

from __future__ import annotations

import io
from datetime import datetime

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from whirr.watch.layout import WORKER_WIDTH, Layout, plan, short_id
from whirr.watch.model import ACTIVE, Detail, JobRow, WatchState, WorkerRow
from whirr.wire.leases import status_note

BARS = "▁▂▃▄▅▆▇█"
STYLES = {
    "running": "bold blue",
    "queued": "yellow",
    "completed": "green",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "magenta",
    "idle": "green",
    "busy": "blue",
    "offline": "dim",
    "stopped": "dim",
}
COUNT_ORDER = ("running", "queued", "completed", "failed", "cancelled", "timed_out")
#: Online workers first, then the ones whose heartbeat stopped.
WORKER_ORDER = {"busy": 0, "idle": 1, "offline": 2}
HELP = "q quit · ↑/↓ or j/k select a job · PgUp/PgDn page · g/G first/last"
#: Widest a job name or a host is shown.
NAME_WIDTH = 24


def sparkline(values: list[float], width: int = 60) -> str:
    """Values as block characters, lowest ▁ to highest █; long series keep their last
    ``width`` points (the recent trend is what one watches)."""
    if not values or width < 1:
        return ""
    shown = values[-width:]
    low, high = min(shown), max(shown)
    if high == low:
        return BARS[len(BARS) // 2] * len(shown)
    scale = (len(BARS) - 1) / (high - low)
    return "".join(BARS[round((v - low) * scale)] for v in shown)


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _ago(seconds: float) -> str:
    """``42s ago``, ``15m ago``, ``3h02m ago``: coarser than a running job's time."""
    seconds = max(0.0, seconds)
    if 60 <= seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    return _span(seconds) + " ago"


def _time(job: JobRow, now: datetime) -> str:
    if job.status == "running" and job.started_at is not None:
        return _span((now - job.started_at).total_seconds())
    if job.finished_at is not None:
        return _ago((now - job.finished_at).total_seconds())
    return _ago((now - job.created_at).total_seconds())


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _table(title: str | None, expand: bool = True) -> Table:
    return Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
        expand=expand,
        pad_edge=False,
        title=title,
        title_justify="left",
        title_style="bold",
    )


def _status(job: JobRow, now: datetime, wide: bool) -> str:
    """The job's status; a narrow screen keeps the verdict, not the reckoning."""
    note = status_note(job.status, job.lease_expires_at, now)
    if note:
        return job.status + note if wide else "worker lost"
    if job.cancel_requested and job.status == "running":
        return "running (cancelling)" if wide else "cancelling"
    return job.status


def _counts(state: WatchState) -> str:
    counts = [f"{state.counts[s]} {s}" for s in COUNT_ORDER if state.counts.get(s)]
    return " · ".join(counts) or "queue empty"


def _widths(cells: list[list[str]], heads: list[str], width: int) -> list[int]:
    """Column widths for the jobs table: each its widest cell, capped, then narrowed in
    turn (name, worker, status) until the command has a dozen columns left."""
    caps = {"NAME": NAME_WIDTH, "WORKER": WORKER_WIDTH, "STATUS": 46}
    widths = [
        min(caps.get(head, 1000), max([len(head)] + [len(row[n]) for row in cells]))
        for n, head in enumerate(heads)
    ]
    command = heads.index("COMMAND")
    gaps = 2 * (len(heads) - 1)  # the table's column separators
    floors = {"NAME": 8, "WORKER": 10, "STATUS": 11}
    for head in ("NAME", "WORKER", "STATUS"):
        n = heads.index(head)
        room = width - gaps - sum(widths) + widths[command]
        widths[n] = max(floors[head], min(widths[n], widths[n] - (12 - room)))
    widths[command] = 0  # the rest of the line (``ratio``)
    return widths


def jobs_title(state: WatchState, rows: int | None = None, top: int = 0) -> Text:
    """``Jobs 13-20/22  4 running · 4 queued · …``: which rows show (when not all do),
    then the jobs counted by status."""
    total = len(state.jobs)
    shown = min(total, rows) if rows is not None else total
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("Jobs", style="bold")
    if shown < total:
        text.append(f" {top + 1}-{top + shown}/{total}")
    text.append(f"  {_counts(state)}")
    return text


def jobs_table(state: WatchState, rows: int | None = None, top: int = 0, width: int = 100) -> Table:
    """The jobs (running, queued, then recently finished), ``rows`` of them from row
    ``top``; the selected one marked ▶. Columns are sized for ``width`` (TRY from 100
    columns on, the full lease note from 160)."""
    shown = state.jobs[top : top + rows] if rows is not None else state.jobs
    table = _table(None)
    wide = width >= 160
    heads = ["", "ID", "NAME", "STATUS", "TRY", "WORKER", "TIME", "COMMAND"]
    if width < 100:
        heads.remove("TRY")
    cells = []
    for job in shown:
        cell = {
            "": "▶" if job.id == state.selected else "",
            "ID": str(job.id),
            "NAME": job.name or "-",
            "STATUS": _status(job, state.now, wide),
            "TRY": str(job.attempt),
            "WORKER": short_id(job.worker_id) if job.worker_id else "-",
            "TIME": _time(job, state.now),
            "COMMAND": _short(" ".join(job.command), 200),
        }
        cells.append([cell[head] for head in heads])
    empty = ["", "-", "no jobs yet"] + [""] * (len(heads) - 3)
    widths = _widths(cells or [empty], heads, width)
    for head, size in zip(heads, widths, strict=True):
        table.add_column(
            head,
            no_wrap=True,
            overflow="ellipsis",
            justify="right" if head in ("ID", "TRY", "TIME") else "left",
            width=size or None,
            ratio=1 if head == "COMMAND" else None,
        )
    if not state.jobs:
        table.add_row(*empty[:2], Text(empty[2], style="dim"), *empty[3:])
    for job, row in zip(shown, cells, strict=True):
        status = heads.index("STATUS")
        row_cells: list[RenderableType] = list(row)
        row_cells[status] = Text(row[status], style=STYLES.get(job.status, ""))
        table.add_row(*row_cells, style="reverse" if job.id == state.selected else None)
    return table


def _workers_summary(workers: list[WorkerRow]) -> str:
    """``2/3 online · 1 stopped``: stopped workers are counted, never listed."""
    listed = [w for w in workers if w.status != "stopped"]
    online = sum(1 for w in listed if w.status in ("idle", "busy"))
    stopped = len(workers) - len(listed)
    return f"{online}/{len(listed)} online" + (f" · {stopped} stopped" if stopped else "")


def _listed(workers: list[WorkerRow]) -> list[WorkerRow]:
    listed = [w for w in workers if w.status != "stopped"]
    return sorted(listed, key=lambda w: (WORKER_ORDER.get(w.status, 3), w.id))


def workers_line(workers: list[WorkerRow], width: int) -> Text:
    """The workers on one line (for a small terminal): the counts, then each listed
    worker's id, status and jobs for as long as they fit."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("Workers", style="bold")
    text.append(f" {_workers_summary(workers)}")
    listed = _listed(workers)
    if not workers:
        text.append(": no workers (start one with `whirr worker`)", style="dim")
    for n, w in enumerate(listed):
        jobs = " " + ",".join(f"#{j}" for j in w.job_ids) if w.job_ids else ""
        part = f"{short_id(w.id)} {w.status}{jobs}"
        more = f" · +{len(listed) - n} more"
        sep = ": " if n == 0 else " · "
        last = n == len(listed) - 1
        if text.cell_len + len(sep) + len(part) + (0 if last else len(more)) > width:
            text.append(more, style="dim")
            break
        text.append(sep)
        text.append(part, style=STYLES.get(w.status, ""))
    return text


def workers_table(workers: list[WorkerRow], now: datetime, rows: int | None = None) -> Table:
    """The workers and what each is running, online ones first; stopped ones are only
    counted in the title."""
    listed = _listed(workers)
    shown = listed[:rows] if rows is not None else listed
    title = f"Workers {_workers_summary(workers)}"
    if len(shown) < len(listed):
        title += f" · {len(listed) - len(shown)} more"
    table = _table(title, expand=False)
    if not listed:
        table.add_column("WORKER")
        note = "no workers (start one with `whirr worker`)" if not workers else "none running"
        table.add_row(Text(note, style="dim"))
        return table
    for name in ("WORKER", "HOST", "STATUS", "JOBS", "GPUS", "SEEN"):
        table.add_column(
            name,
            no_wrap=True,
            overflow="ellipsis",
            max_width=NAME_WIDTH if name in ("WORKER", "HOST") else None,
        )
    for w in shown:
        table.add_row(
            short_id(w.id, NAME_WIDTH),
            w.hostname,
            Text(w.status, style=STYLES.get(w.status, "")),
            ", ".join(f"#{j}" for j in w.job_ids) or "-",
            ",".join(map(str, w.gpu_ids)) or "-",
            _span((now - w.heartbeat_at).total_seconds()) + " ago",
        )
    return table


def _metric_line(detail: Detail, width: int) -> Text:
    values = detail.values
    stats = (
        f"  last {values[-1]:.4g}  min {min(values):.4g}  max {max(values):.4g}"
        f"  ({_plural(len(values), 'point')})"
    )
    label = f"{detail.metric} "
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(label, style="bold")
    line.append(sparkline(values, min(60, max(8, width - len(label) - len(stats)))), style="cyan")
    line.append(stats)
    return line


def detail_panel(
    job: JobRow | None, detail: Detail | None, log_lines: int, width: int = 100
) -> Panel:
    """The selected job: its main metric as a sparkline, then its last log lines (one
    screen line each: a long line is cut, ``whirr logs`` has it whole)."""
    if job is None:
        return Panel(Text("no job selected", style="dim"), title="Job", title_align="left")
    inner = max(1, width - 4)  # borders and padding
    parts: list[RenderableType] = []
    if detail is not None and detail.metric and detail.values:
        parts.append(_metric_line(detail, inner))
    elif detail is not None and detail.metric:
        parts.append(Text(f"{detail.metric}: no values yet", style="dim"))
    lines = (detail.log_lines if detail is not None else [])[-log_lines:]
    if lines:
        parts.append(Text("\n".join(lines), no_wrap=True, overflow="ellipsis"))
    else:
        ended = job.status not in ACTIVE
        parts.append(Text("(no output)" if ended else "(no output yet)", style="dim"))
    title = f"Job #{job.id}" + (f" {job.name}" if job.name else "") + f" · {job.status}"
    return Panel(Group(*parts), title=title, title_align="left", box=box.ROUNDED)


def _fit_source(source: str, room: int) -> str:
    """``project /a/long/path`` cut from the left of its path (the end names it)."""
    if len(source) <= room:
        return source
    kind, _, where = source.partition(" ")
    if not where or room < len(kind) + 12:  # too little room to name the kind too
        kind, where = "", source
    keep = room - (len(kind) + 1 if kind else 0) - 1
    if keep < 4:
        return _short(source, max(1, room))
    return (kind + " " if kind else "") + "…" + where[len(where) - keep :]


def header(state: WatchState, width: int = 100) -> Text:
    """One line: what is watched (its path cut to fit) and the time."""
    clock = f"  ·  {state.now.strftime('%H:%M:%S')}"
    room = width - len("whirr watch  ") - len(clock)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("whirr watch", style="bold")
    text.append(f"  {_fit_source(state.source, max(12, room))}")
    text.append(clock, style="dim")
    return text


def render(
    state: WatchState,
    log_lines: int = 10,
    *,
    width: int = 100,
    height: int | None = None,
    top: int = 0,
    keys: bool = True,
) -> RenderableType:
    """The whole frame for a ``width`` x ``height`` screen (``height=None``: as tall as
    it takes), jobs listed from row ``top``; ``keys`` adds the key help on the last row."""
    layout: Layout = plan(state, height, log_lines, keys)
    selected = next((j for j in state.jobs if j.id == state.selected), None)
    workers: RenderableType = (
        workers_line(state.workers, width)
        if layout.worker_rows is None
        else workers_table(state.workers, state.now, layout.worker_rows)
    )
    parts: list[RenderableType] = [
        header(state, width),
        jobs_title(state, layout.job_rows, top),
        jobs_table(state, layout.job_rows, top, width),
        workers,
        detail_panel(selected, state.detail, layout.log_lines, width),
    ]
    if keys:
        parts += [Text("") for _ in range(layout.spare)]
        parts.append(Text(HELP, style="dim", no_wrap=True, overflow="ellipsis"))
    return Group(*parts)


def render_text(
    state: WatchState,
    width: int = 100,
    log_lines: int = 10,
    *,
    height: int | None = None,
    top: int = 0,
    keys: bool = False,
) -> str:
    """The frame as plain text (no colours), e.g. for tests or ``watch --once``. With a
    ``height``, exactly the screen the live view draws: ``height`` lines, cut below."""
    console = Console(
        file=io.StringIO(),
        width=width,
        height=height or 25,
        color_system=None,
        force_terminal=False,
        legacy_windows=False,
        record=False,
    )
    frame = render(state, log_lines, width=width, height=height, top=top, keys=keys)
    if height is None:
        console.print(frame)
        lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    else:
        options = console.options.update_dimensions(width, height)
        rendered = console.render_lines(frame, options, pad=True)
        lines = ["".join(segment.text for segment in line) for line in rendered]
    return "\n".join(line.rstrip() for line in lines) + "\n"
