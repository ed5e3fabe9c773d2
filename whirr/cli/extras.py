"""Which of whirr's extras brings an optional library, so that a command run without it
says what to install in one line instead of failing with ``ModuleNotFoundError``."""

from __future__ import annotations

#: import name -> the extras (``pyproject.toml``) that install it, the smallest first.
#: tests/packaging checks this against fresh installs of each extra.
PROVIDED_BY: dict[str, tuple[str, ...]] = {
    "duckdb": ("analytics",),
    "pyarrow": ("analytics",),
    "polars": ("analytics", "dashboard", "server"),
    "sanic": ("dashboard", "server"),
    "numpy": ("dashboard", "server"),
    "plotly": ("dashboard", "server"),
    "psycopg": ("server",),
    "psycopg_pool": ("server",),
    "boto3": ("s3",),
    "pynvml": ("gpu",),
    "optuna": ("sweeps",),
}

#: The extra a command is for: named when it brings the missing library.
COMMAND_EXTRA: dict[str, str] = {
    "compare": "analytics",
    "export": "analytics",
    "sql": "analytics",
    "runs": "analytics",  # its --filter is DuckDB SQL
    "server": "server",
    "dashboard": "dashboard",
    "sweep": "sweeps",
}


def missing_extra(command: str | None, exc: BaseException) -> str | None:
    """The one-line error for ``exc`` when it is an optional library that is not
    installed (``None`` for anything else: that stays an internal error)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    module = exc.name.split(".")[0]
    extras = PROVIDED_BY.get(module)
    if extras is None:
        return None
    wanted = COMMAND_EXTRA.get(command or "")
    extra = wanted if wanted in extras else extras[0]
    who = f"whirr {command}" if command else "this command"
    return f"{who} needs {module}, which is not installed: pip install 'whirr[{extra}]'"
