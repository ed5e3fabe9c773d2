"""Options every job of a study gets (``whirr sweep``, ``whirr ablate run``): ``--priority``,
``--max-attempts`` and ``-o KEY=VALUE`` for any other submit option."""

from __future__ import annotations

from typing import Any

import click


def collect_submit_options(
    priority: int | None, max_attempts: int | None, options: tuple[str, ...]
) -> dict[str, Any]:
    """The submit options the flags give, typed (``-o retries=2`` is the int 2) and
    checked against what ``Jobs.submit`` takes."""
    from whirr.studies.linking import check_submit_options
    from whirr.studies.values import parse_scalar, split_assignment

    parsed: dict[str, Any] = {}
    for text in options:
        try:
            key, value = split_assignment(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'-o/--option'") from None
        parsed[key.replace("-", "_")] = parse_scalar(value)
    if priority is not None:
        parsed["priority"] = priority
    if max_attempts is not None:
        parsed["max_attempts"] = max_attempts
    return check_submit_options(parsed)


def submit_option_flags(func: Any) -> Any:
    """``--priority``, ``--max-attempts`` and ``-o KEY=VALUE``: options passed to submit."""
    func = click.option(
        "-o",
        "--option",
        "options",
        multiple=True,
        metavar="KEY=VALUE",
        help="Any other submit option for every job, e.g. -o max_attempts=1 (repeatable).",
    )(func)
    func = click.option(
        "--max-attempts",
        type=click.IntRange(1, 100),
        default=None,
        help="Attempts each job may use when its worker is lost.",
    )(func)
    func = click.option(
        "--priority",
        type=int,
        default=None,
        help="Queue priority of every job (higher runs first).",
    )(func)
    return func
