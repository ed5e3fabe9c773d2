"""Run tokens: what a job gets as ``WHIRR_TOKEN`` instead of its worker's token.

At claim time the server hands the worker, with the job, a token for that job's attempt:
``whirr_run.<job id>.<attempt>.<mac>``, the mac an HMAC of ``<job id>:<attempt>`` under a
key derived from the server's own token (nothing is stored; a new server token voids
every run token). The server accepts one only

- on the routes a tracked script uses for its own run (``RUN_ROUTES``: attach, summary,
  artifact records, and the GETs of that run), with ``{run_id}`` exactly that job's run;
- while that attempt holds the job: once it ended, or the job was handed out again, the
  token is refused.

So a job whose environment leaks gives away the right to write its own run, while it
runs, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac

from whirr.projections.jobs import JobView
from whirr.web.http import Forbidden

PREFIX = "whirr_run."
#: The routes (handler names) a run token may use, always for its own run.
RUN_ROUTES = frozenset(
    {
        "attach_run",
        "run_summary",
        "run_tags",
        "run_note",
        "run_config",
        "run_artifact_saved",
        "get_run",
        "run_metrics",
        "run_tail",
        "run_artifacts",
        "run_artifact",
        "run_system",
        "run_raw",
    }
)


def run_token_key(server_token: str) -> bytes:
    """The HMAC key of a server's run tokens (derived, so no token is ever a key)."""
    return hmac.new(server_token.encode(), b"whirr run tokens v1", hashlib.sha256).digest()


def _mac(key: bytes, job_id: int, attempt: int) -> str:
    return hmac.new(key, f"{job_id}:{attempt}".encode(), hashlib.sha256).hexdigest()


def mint(key: bytes, job_id: int, attempt: int) -> str:
    """The run token of ``job_id``'s ``attempt``."""
    return f"{PREFIX}{job_id}.{attempt}.{_mac(key, job_id, attempt)}"


def parse(key: bytes, token: str) -> tuple[int, int] | None:
    """(job id, attempt) of a genuine run token; None for anything else."""
    parts = token[len(PREFIX) :].split(".") if token.startswith(PREFIX) else []
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    job_id, attempt = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(parts[2].encode(), _mac(key, job_id, attempt).encode()):
        return None
    return job_id, attempt


def check_run_access(
    route_name: str | None, run_id: str | None, job: JobView | None, attempt: int
) -> None:
    """403 unless a run token of ``job``'s ``attempt`` may use this route on ``run_id``."""
    if route_name not in RUN_ROUTES or run_id is None:
        raise Forbidden(
            "a run token (the WHIRR_TOKEN a job gets) can only record and read its own run"
        )
    if job is None or job.run_id != run_id:
        raise Forbidden("a run token can only record and read its own run")
    if job.attempt != attempt or job.status != "running":
        raise Forbidden("this run token's attempt has ended")
