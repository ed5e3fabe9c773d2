"""``whirr watch``: a live full-screen view of jobs, workers and the selected job's log
and main metric. Rendering (``render``) is a pure function of a ``WatchState``."""

from whirr.watch.model import Detail, JobRow, WatchState, WorkerRow
from whirr.watch.render import render, render_text, sparkline

__all__ = ["Detail", "JobRow", "WatchState", "WorkerRow", "render", "render_text", "sparkline"]
