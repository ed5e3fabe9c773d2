"""``.whirr/config.yaml``: validated project settings."""

from __future__ import annotations

import math
import os
from pathlib import Path

import msgspec

DEFAULT_CONFIG_TEXT = """\
# whirr project settings (durations in seconds). Every key, its default and its bounds:
# docs/configuration.md in whirr's source. Uncomment `notify:` and its lines to use hooks.
heartbeat_interval: 30    # how often a worker renews its lease on a running job
heartbeat_timeout: 120    # lease length: a job whose worker is silent this long is requeued
kill_grace_period: 10     # SIGTERM -> SIGKILL delay when stopping a job's process group
poll_interval: 5          # fallback re-check of the queue when file notifications are unavailable
max_attempts: 3           # attempts a job may use when its worker is lost
retry_delay: 10           # backoff before the first retry of `submit --retries`; doubles each time
snapshot: false           # `submit` runs jobs from a snapshot of the code (see docs/scheduling.md)
reserve_after: 300        # a job that does not fit waits this long, then keeps GPUs free for itself
forget_workers_after: 604800  # 7 days: `whirr workers` and status leave out workers silent longer
# notify:                 # hooks when jobs finish, fail or get stuck (see docs/scheduling.md)
#   command: 'notify-send whirr "$WHIRR_JOB_NAME $WHIRR_EVENT"'
#   webhook: https://hooks.example.com/whirr
#   events: [finished, failed, stuck]
#   stuck_after: 1800     # no new metric row for this long while running: stuck
"""


class ConfigError(Exception):
    """config.yaml is unreadable or invalid."""


#: Bounds of every number in config.yaml: key -> (lowest, highest, lowest excluded).
#: NaN and infinity are refused everywhere (a timer that never fires is not a setting).
#: docs/configuration.md lists them; a test keeps the two in step.
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "heartbeat_interval": (0, 3600, True),
    "heartbeat_timeout": (0, 86_400, True),
    "kill_grace_period": (0, 3600, False),
    "poll_interval": (0, 3600, True),
    "max_attempts": (1, 100, False),
    "retry_delay": (0, 86_400, False),
    "reserve_after": (0, 604_800, False),
    # As `whirr server --forget-workers-after` (whirr.cli.scheduling.MAX_DURATION).
    "forget_workers_after": (0, 10_000_000, True),
    "notify.stuck_after": (0, 604_800, False),
}
NOTIFY_EVENTS = ("finished", "failed", "stuck")


def _check_bounds(struct: msgspec.Struct, prefix: str = "") -> None:
    for key, (low, high, open_low) in BOUNDS.items():
        if not key.startswith(prefix) or "." in key[len(prefix) :]:
            continue
        value = getattr(struct, key[len(prefix) :])
        if not math.isfinite(value) or value < low or value > high or (open_low and value == low):
            floor = f"> {low}" if open_low else f">= {low}"
            raise ValueError(f"{key} must be a number {floor} and <= {high}, not {value!r}")


class NotifyConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Notification hooks: a shell command and/or a webhook URL, on some job events."""

    command: str | None = None
    webhook: str | None = None
    #: Which events fire: finished (completed), failed (failed or timed out), stuck.
    events: tuple[str, ...] = NOTIFY_EVENTS
    #: Seconds without a new metric row before a running job counts as stuck (0: never).
    stuck_after: float = 0.0

    def __post_init__(self) -> None:
        unknown = set(self.events) - set(NOTIFY_EVENTS)
        if unknown:
            raise ValueError(f"notify.events: unknown events {sorted(unknown)}")
        _check_bounds(self, "notify.")
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
    #: Workers not heard from for this long are left out of the workers listings and the
    #: status counts (``whirr.services.workers.FORGET_WORKERS_AFTER``: 7 days).
    forget_workers_after: float = 604_800.0
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)

    def __post_init__(self) -> None:
        _check_bounds(self)
        if self.heartbeat_interval >= self.heartbeat_timeout:
            raise ValueError("heartbeat_interval must be shorter than heartbeat_timeout")
        if self.forget_workers_after < self.heartbeat_timeout:
            # Else a worker still online would drop out of `whirr workers`.
            raise ValueError("forget_workers_after must be at least heartbeat_timeout")


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
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})") from None
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
