"""Drawing a ``WatchState`` with rich: a pure function of the state, so a test can render
it to a string (``render_text``) and compare."""

from __future__ import annotations

import io
from datetime import datetime

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from whirr.watch.model import Detail, JobRow, WatchState, WorkerRow
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
HELP = "q quit · ↑/↓ or j/k select a job"


def sparkline(values: list[float], width: int = 60) -> str:
    """Values as block characters, lowest ▁ to highest █; long series keep their last
    ``width`` points (the recent trend is what one watches)."""
    if not values:
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


def _time(job: JobRow, now: datetime) -> str:
    if job.status == "running" and job.started_at is not None:
        return _span((now - job.started_at).total_seconds())
    if job.finished_at is not None:
        return _span((now - job.finished_at).total_seconds()) + " ago"
    return _span((now - job.created_at).total_seconds()) + " ago"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def jobs_table(state: WatchState) -> Table:
    """The jobs: running, queued, then recently finished; the selected one marked ▶."""
    table = Table(
        box=box.SIMPLE_HEAD,
        expand=True,
        pad_edge=False,
        title="Jobs",
        title_justify="left",
        title_style="bold",
    )
    for name, kwargs in (
        ("", {"width": 1}),
        ("ID", {"justify": "right"}),
        ("NAME", {}),
        ("STATUS", {}),
        ("TRY", {"justify": "right"}),
        ("WORKER", {}),
        ("TIME", {"justify": "right"}),
        ("COMMAND", {"ratio": 1}),
    ):
        table.add_column(name, no_wrap=True, overflow="ellipsis", **kwargs)
    if not state.jobs:
        table.add_row("", "-", Text("no jobs yet", style="dim"), "", "", "", "", "")
    for job in state.jobs:
        selected = job.id == state.selected
        status = job.status + (
            " (cancelling)" if job.cancel_requested and job.status == "running" else ""
        )
        status += status_note(job.status, job.lease_expires_at, state.now)
        table.add_row(
            "▶" if selected else "",
            str(job.id),
            job.name or "-",
            Text(status, style=STYLES.get(job.status, "")),
            str(job.attempt),
            job.worker_id or "-",
            _time(job, state.now),
            _short(" ".join(job.command), 200),
            style="reverse" if selected else None,
        )
    return table


def workers_table(workers: list[WorkerRow], now: datetime) -> Table:
    """The workers and what each is running."""
    table = Table(
        box=box.SIMPLE_HEAD,
        expand=True,
        pad_edge=False,
        title="Workers",
        title_justify="left",
        title_style="bold",
    )
    if not workers:
        table.add_column("WORKER")
        table.add_row(Text("no workers (start one with `whirr worker`)", style="dim"))
        return table
    for name in ("WORKER", "HOST", "STATUS", "JOBS", "GPUS", "SEEN"):
        table.add_column(
            name, no_wrap=True, overflow="ellipsis", ratio=1 if name == "WORKER" else None
        )
    for w in workers:
        table.add_row(
            w.id,
            w.hostname,
            Text(w.status, style=STYLES.get(w.status, "")),
            ", ".join(f"#{j}" for j in w.job_ids) or "-",
            ",".join(map(str, w.gpu_ids)) or "-",
            _span((now - w.heartbeat_at).total_seconds()) + " ago",
        )
    return table


def detail_panel(job: JobRow | None, detail: Detail | None, log_lines: int) -> Panel:
    """The selected job: its main metric as a sparkline, then its last log lines."""
    if job is None:
        return Panel(Text("no job selected", style="dim"), title="Job", title_align="left")
    parts: list[RenderableType] = []
    if detail is not None and detail.metric and detail.values:
        values = detail.values
        line = Text()
        line.append(f"{detail.metric} ", style="bold")
        line.append(sparkline(values), style="cyan")
        line.append(
            f"  last {values[-1]:.4g}  min {min(values):.4g}  max {max(values):.4g}"
            f"  ({len(values)} points)"
        )
        parts.append(line)
    elif detail is not None and detail.metric:
        parts.append(Text(f"{detail.metric}: no values yet", style="dim"))
    lines = (detail.log_lines if detail is not None else [])[-log_lines:]
    parts.append(Text("\n".join(lines)) if lines else Text("(no output yet)", style="dim"))
    title = f"Job #{job.id}" + (f" {job.name}" if job.name else "") + f" · {job.status}"
    return Panel(Group(*parts), title=title, title_align="left", box=box.ROUNDED)


def header(state: WatchState) -> Text:
    """One line: source, counts, workers online, time."""
    text = Text()
    text.append("whirr watch", style="bold")
    text.append(f"  {state.source}  ")
    counts = [f"{state.counts[s]} {s}" for s in COUNT_ORDER if state.counts.get(s)]
    text.append(" · ".join(counts) or "queue empty")
    online = sum(1 for w in state.workers if w.status in ("idle", "busy"))
    text.append(f"  ·  workers {online}/{len(state.workers)} online")
    text.append(f"  ·  {state.now.strftime('%H:%M:%S')}", style="dim")
    return text


def render(state: WatchState, log_lines: int = 10) -> RenderableType:
    """The whole frame."""
    selected = next((j for j in state.jobs if j.id == state.selected), None)
    return Group(
        header(state),
        jobs_table(state),
        workers_table(state.workers, state.now),
        detail_panel(selected, state.detail, log_lines),
        Text(HELP, style="dim"),
    )


def render_text(state: WatchState, width: int = 100, log_lines: int = 10) -> str:
    """The frame as plain text (no colours), e.g. for tests or ``watch --once``."""
    console = Console(
        file=io.StringIO(),
        width=width,
        color_system=None,
        force_terminal=False,
        legacy_windows=False,
        record=False,
    )
    console.print(render(state, log_lines))
    output = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in output.splitlines()) + "\n"
