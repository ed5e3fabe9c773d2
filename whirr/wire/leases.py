"""Whether a running job's lease has run out: its worker is lost (killed, cut off) and the
job will be requeued, by the server's reaper within a second, or in a project by the next
command that writes (or a worker as it starts or sweeps). Until then a reader shows it so,
instead of a ``running`` that nothing runs."""

from __future__ import annotations

from datetime import datetime


def lapsed_seconds(status: str, lease_expires_at: datetime | None, now: datetime) -> float | None:
    """Seconds since the lease of a ``running`` job ran out; None while it holds (or the
    job is not running, or has no lease)."""
    if status != "running" or lease_expires_at is None:
        return None
    over = (now - lease_expires_at).total_seconds()
    return over if over > 0 else None


def status_note(status: str, lease_expires_at: datetime | None, now: datetime) -> str:
    """`` (lease expired 12s ago: worker lost)`` for such a job, else ``""``."""
    over = lapsed_seconds(status, lease_expires_at, now)
    if over is None:
        return ""
    shown = f"{over:.0f}s" if over < 120 else f"{over / 60:.0f}m"
    return f" (lease expired {shown} ago: worker lost)"
