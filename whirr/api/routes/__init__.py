"""The routes of ``/api/v1``, one module per resource."""

from __future__ import annotations

from whirr.api.routes import (
    ablations,
    artifact_uploads,
    direct_runs,
    jobs,
    queue,
    run_events,
    run_files,
    run_manage,
    run_system,
    runs,
    shipping,
    streams,
    sweeps,
    system,
    workers,
)
from whirr.api.routing import Route

#: Every route of the API, in the order the OpenAPI document lists them.
ROUTES: list[Route] = [
    *system.ROUTES,
    *workers.ROUTES,
    *jobs.ROUTES,
    *queue.ROUTES,
    *streams.ROUTES,
    *runs.ROUTES,
    *run_system.ROUTES,
    *run_events.ROUTES,
    *run_manage.ROUTES,
    *direct_runs.ROUTES,
    *run_files.ROUTES,
    *artifact_uploads.ROUTES,
    *shipping.ROUTES,
    *sweeps.ROUTES,
    *ablations.ROUTES,
]

__all__ = ["ROUTES"]
