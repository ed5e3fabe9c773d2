"""Submit options every job of a study gets (``whirr sweep``, ``whirr ablate run``): the
scheduling flags of ``whirr submit`` (``--priority``, ``--gpus``, ``--retries``,
``--timeout``, ``--max-attempts``) and ``-o KEY=VALUE`` for any other submit option.

The flags are not passed to the command as arguments: their callbacks note them on the
click context, and ``collect_submit_options`` turns them into ``Jobs.submit`` keywords
inside the command (where a bad key becomes ``Error: ...``)."""

from __future__ import annotations

from typing import Any

import click

from whirr.cli.common import GPUS, PRIORITY

_NOTED = "whirr.submit_options"


def _note(key: str, convert: Any = None) -> Any:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value != ():
            ctx.meta.setdefault(_NOTED, {})[key] = convert(value) if convert else value
        return value

    return callback


def _duration(text: str) -> float:
    from whirr.cli.scheduling import parse_duration

    return parse_duration(text)


def collect_submit_options() -> dict[str, Any]:
    """The submit options the flags gave, typed (``-o retries=2`` is the int 2) and
    checked against what ``Jobs.submit`` takes; named flags win over ``-o``."""
    from whirr.studies.linking import check_submit_options
    from whirr.studies.values import parse_scalar, split_assignment

    noted = dict(click.get_current_context().meta.get(_NOTED, {}))
    parsed: dict[str, Any] = {}
    for text in noted.pop("options", ()):
        try:
            key, value = split_assignment(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'-o/--option'") from None
        parsed[key.replace("-", "_")] = parse_scalar(value)
    options = {**parsed, **noted}
    problem = type_error(options)  # first, so that the error names the flag
    if problem is not None:
        raise click.BadParameter(problem, param_hint="'-o/--option'")
    return check_submit_options(options)


def type_error(options: dict[str, Any]) -> str | None:
    """What is wrong with the values of ``options`` (types and bounds as ``POST /jobs``
    takes them), or None: checked before anything is planned or recorded."""
    from whirr.studies.linking import submit_option_type_error

    return submit_option_type_error(options)


def submit_option_flags(func: Any) -> Any:
    """Add the submit flags to a command (see the module's docstring)."""
    flags = [
        click.option(
            "--priority",
            type=PRIORITY,
            callback=_note("priority"),
            expose_value=False,
            help="Queue priority of every job (higher runs first).",
        ),
        click.option(
            "--gpus",
            type=GPUS,
            callback=_note("gpus"),
            expose_value=False,
            help="GPUs each job needs (0: CPU only).",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 100),
            callback=_note("retries"),
            expose_value=False,
            help="Retry a failed attempt this often.",
        ),
        click.option(
            "--timeout",
            metavar="DURATION",
            expose_value=False,
            callback=_note("timeout_seconds", _duration),
            help="Stop each job after this long (90s, 15m, 2h): timed_out.",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(1, 100),
            callback=_note("max_attempts"),
            expose_value=False,
            help="Attempts each job may use when its worker is lost.",
        ),
        click.option(
            "-o",
            "--option",
            "options",
            multiple=True,
            metavar="KEY=VALUE",
            callback=_note("options"),
            expose_value=False,
            help="Any other submit option for every job, e.g. -o after_any=true (repeatable).",
        ),
    ]
    for flag in reversed(flags):
        func = flag(func)
    return func
