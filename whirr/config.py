"""``.whirr/config.yaml``: validated project settings."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

DEFAULT_CONFIG_TEXT = """\
# whirr project settings (seconds). See docs/configuration.md.
heartbeat_interval: 30    # how often a worker renews its lease on a running job
heartbeat_timeout: 120    # lease length: a job whose worker is silent this long is requeued
kill_grace_period: 10     # SIGTERM -> SIGKILL delay when stopping a job's process group
poll_interval: 5          # fallback re-check of the queue when file notifications are unavailable
max_attempts: 3           # attempts a job may use when its worker is lost
retry_delay: 10           # backoff before the first retry of `submit --retries`; doubles each time
snapshot: false           # `submit` runs jobs from a snapshot of the code (see docs/scheduling.md)
reserve_after: 300        # a job that does not fit waits this long, then keeps GPUs free for itself
# notify:                 # hooks when jobs finish, fail or get stuck (see docs/scheduling.md)
#   command: "notify-send whirr \"$WHIRR_JOB_NAME $WHIRR_EVENT\""
#   webhook: https://hooks.example.com/whirr
#   events: [finished, failed, stuck]
#   stuck_after: 1800     # no new metric row for this long while running: stuck
"""


class ConfigError(Exception):
    """config.yaml is unreadable or invalid."""


class NotifyConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Notification hooks: a shell command and/or a webhook URL, on some job events."""

    command: str | None = None
    webhook: str | None = None
    #: Which events fire: finished (completed), failed (failed or timed out), stuck.
    events: tuple[str, ...] = ("finished", "failed", "stuck")
    #: Seconds without a new metric row before a running job counts as stuck (0: never).
    stuck_after: float = 0.0

    def __post_init__(self) -> None:
        unknown = set(self.events) - {"finished", "failed", "stuck"}
        if unknown:
            raise ValueError(f"notify.events: unknown events {sorted(unknown)}")
        if self.stuck_after < 0:
            raise ValueError("notify.stuck_after must not be negative")
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise ValueError("notify.webhook must be an http:// or https:// URL")


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Project settings, all in seconds except ``max_attempts``."""

    heartbeat_interval: float = 30.0
    heartbeat_timeout: float = 120.0
    kill_grace_period: float = 10.0
    poll_interval: float = 5.0
    max_attempts: int = 3
    retry_delay: float = 10.0
    snapshot: bool = False
    reserve_after: float = 300.0
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)

    def __post_init__(self) -> None:
        for field in ("heartbeat_interval", "heartbeat_timeout", "poll_interval"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be positive")
        if self.kill_grace_period < 0:
            raise ValueError("kill_grace_period must not be negative")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.retry_delay < 0 or self.reserve_after < 0:
            raise ValueError("retry_delay and reserve_after must not be negative")
        if self.heartbeat_interval >= self.heartbeat_timeout:
            raise ValueError("heartbeat_interval must be shorter than heartbeat_timeout")


def load_config(path: Path) -> Config:
    """Read and validate ``path``; a missing file means defaults."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    stamp = [stat.st_mtime_ns, stat.st_size]
    cache = path.with_name(".config-cache.json")
    # Every command reads the config; importing a YAML parser costs more than the rest of
    # a quick command like `whirr submit`. So the validated settings are kept beside the
    # file as JSON, keyed by its mtime and size, and YAML is parsed only after an edit.
    try:
        cached = msgspec.json.decode(cache.read_bytes())
        if cached["stamp"] == stamp:
            return msgspec.convert(cached["config"], Config)
    except (OSError, ValueError, KeyError, TypeError, msgspec.ValidationError):
        pass
    config = _parse(path)
    try:
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        from whirr.filemodes import write_private  # 0600, like everything in .whirr/

        write_private(tmp, msgspec.json.encode({"stamp": stamp, "config": config}))
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only project still works, just without the shortcut
    return config


def _parse(path: Path) -> Config:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of settings")
    try:
        return msgspec.convert(raw, Config)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
