"""Notification hooks (``notify:`` in config.yaml): a shell command and/or a webhook URL,
fired by the worker that ran the job when it finished, failed or looks stuck.

Hooks run on a thread of their own, one at a time, so a slow webhook never delays the
worker's loop (a job's exit is reported first, the hook follows). A hook that fails is
reported through ``say`` and otherwise ignored: a notification must never fail a job.

The command runs with ``sh -c`` and gets ``WHIRR_EVENT``, ``WHIRR_JOB_ID``,
``WHIRR_JOB_NAME``, ``WHIRR_JOB_STATUS``, ``WHIRR_RUN_ID`` and ``WHIRR_RUN_DIR`` in its
environment and the JSON payload on stdin; the webhook gets the payload as a JSON POST.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import msgspec

from whirr.config import NotifyConfig
from whirr.wire import schemas

HOOK_TIMEOUT_S = 30.0
_encode = msgspec.json.Encoder().encode


def event_for(status: str) -> str | None:
    """The hook event a job's final status fires: ``finished``, ``failed`` or none."""
    if status == "completed":
        return "finished"
    if status in ("failed", "timed_out"):
        return "failed"
    return None


def payload(event: str, job: schemas.Job, run_dir: str, detail: str = "") -> dict[str, Any]:
    """What a hook is told about ``job``."""
    return {
        "event": event,
        "job_id": job.id,
        "name": job.name,
        "status": job.status,
        "attempt": job.attempt,
        "exit_code": job.exit_code,
        "error": job.error,
        "run_id": job.run_id,
        "run_dir": run_dir,
        "worker_id": job.worker_id,
        "command_argv": job.command_argv,
        "detail": detail,
    }


class Notifier:
    """Fires the configured hooks in the background."""

    def __init__(self, config: NotifyConfig, say: Callable[[str], None]) -> None:
        self.config = config
        self.say = say
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """True when a command or a webhook is configured."""
        return bool(self.config.command or self.config.webhook)

    def fire(self, event: str, job: schemas.Job, run_dir: str, detail: str = "") -> None:
        """Queue ``event`` for ``job`` if it is configured; returns at once."""
        if not self.enabled or event not in self.config.events:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
            self._thread.start()
        self._queue.put(payload(event, job, run_dir, detail))

    def close(self, timeout: float = HOOK_TIMEOUT_S) -> None:
        """Let queued hooks finish (up to ``timeout``) before the worker exits."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.config.command:
                self._command(self.config.command, item)
            if self.config.webhook:
                self._webhook(self.config.webhook, item)

    def _command(self, command: str, item: dict[str, Any]) -> None:
        env = {
            **os.environ,
            "WHIRR_EVENT": item["event"],
            "WHIRR_JOB_ID": str(item["job_id"]),
            "WHIRR_JOB_NAME": item["name"] or "",
            "WHIRR_JOB_STATUS": item["status"],
            "WHIRR_RUN_ID": item["run_id"],
            "WHIRR_RUN_DIR": item["run_dir"],
        }
        try:
            done = subprocess.run(
                ["sh", "-c", command],
                input=_encode(item),
                env=env,
                capture_output=True,
                timeout=HOOK_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self.say(f"notify command failed: {exc}")
            return
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()[-200:]
            self.say(f"notify command exited {done.returncode}: {err}")

    def _webhook(self, url: str, item: dict[str, Any]) -> None:
        import urllib.request  # only when a webhook is configured: it costs megabytes

        request = urllib.request.Request(
            url,
            data=_encode(item),
            headers={"Content-Type": "application/json", "User-Agent": "whirr"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=HOOK_TIMEOUT_S) as response:
                response.read()
        except OSError as exc:  # URLError, HTTPError and timeouts are all OSErrors
            self.say(f"notify webhook {url} failed: {exc}")
