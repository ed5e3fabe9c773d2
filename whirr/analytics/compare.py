"""``whirr compare``: runs side by side, config differences and the best value per row."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from whirr.analytics.errors import AnalyticsError
from whirr.analytics.schema import NUMERIC, quote_ident
from whirr.analytics.selection import resolve_runs
from whirr.analytics.session import Session
from whirr.facade.protocol import Whirr
from whirr.wire import schemas

Goal = Literal["min", "max"]
_MISSING = object()
#: Name tokens of metrics where lower is better; any other metric is better higher.
_LOWER_TOKENS = frozenset(
    {
        "loss",
        "error",
        "err",
        "errors",
        "mse",
        "mae",
        "rmse",
        "nll",
        "perplexity",
        "ppl",
        "wer",
        "cer",
        "regret",
        "cost",
        "latency",
        "time",
        "seconds",
        "distance",
    }
)
_STEP_AT = re.compile(r"^step\s*=\s*(-?\d+)$")


def default_goal(name: str) -> Goal:
    """``min`` for loss- and error-like names (``val_loss``, ``top1_err``, ``mse``),
    ``max`` otherwise (accuracy, reward, f1...)."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]
    lower = any(t in _LOWER_TOKENS or "loss" in t or "error" in t for t in tokens)
    return "min" if lower else "max"


def parse_goals(goals: Sequence[str]) -> tuple[Goal | None, dict[str, Goal]]:
    """``--goal min|max`` (every row) and ``--goal NAME=min|max`` (one row) options."""
    overall: Goal | None = None
    named: dict[str, Goal] = {}
    for text in goals:
        name, sep, goal = text.rpartition("=")
        goal = goal.strip().lower()
        if goal not in ("min", "max"):
            raise AnalyticsError(f"--goal {text!r}: expected min, max, or NAME=min|max")
        if sep:
            named[name.strip()] = goal  # type: ignore[assignment]
        else:
            overall = goal  # type: ignore[assignment]
    return overall, named


def at_expression(at: str, column: str) -> str:
    """The aggregate giving a run's value of ``column`` at ``at`` (last/min/max/step=N)."""
    col = quote_ident(column)
    text = at.strip().lower()
    if text == "last":
        return f"arg_max({col}, _idx) FILTER (WHERE {col} IS NOT NULL)"
    if text in ("min", "max"):
        return f"{text}({col})"
    match = _STEP_AT.match(text)
    if match:
        step = int(match.group(1))  # an int, so inlining it is safe
        return f"arg_max({col}, _idx) FILTER (WHERE step = {step} AND {col} IS NOT NULL)"
    raise AnalyticsError(f"--at {at!r}: expected last, min, max or step=N")


@dataclass
class Row:
    """One line of the comparison: a field and its value in each run."""

    section: str  # run, config, summary or metrics
    key: str
    values: list[Any]
    differs: bool = False
    goal: Goal | None = None
    best: list[bool] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``config.lr``, ``summary.best_loss``, ``metrics.loss`` or a run field."""
        return self.key if self.section == "run" else f"{self.section}.{self.key}"


@dataclass
class Comparison:
    """The runs compared and their rows, in display order."""

    runs: list[schemas.Run]
    at: str
    rows: list[Row]

    def section(self, name: str) -> list[Row]:
        """The rows of one section."""
        return [row for row in self.rows if row.section == name]

    def to_dict(self) -> dict[str, Any]:
        """The comparison as plain data (``-o json``)."""
        runs = []
        for i, run in enumerate(self.runs):
            item: dict[str, Any] = {row.key: row.values[i] for row in self.section("run")}
            for name in ("config", "summary", "metrics"):
                item[name] = {r.key: r.values[i] for r in self.section(name)}
            runs.append({"id": run.id, **item})
        return {
            "at": self.at,
            "runs": runs,
            "differing_config": [r.key for r in self.section("config") if r.differs],
            "goals": {r.label: r.goal for r in self.rows if r.goal},
            "best": {
                r.label: [run.id for run, b in zip(self.runs, r.best, strict=True) if b]
                for r in self.rows
                if r.goal
            },
        }


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys: ``{"opt": {"lr": 1}}`` -> ``{"opt.lr": 1}``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def compare_runs(
    whirr: Whirr,
    refs: Sequence[str],
    metrics: Sequence[str] = (),
    at: str = "last",
    goals: Sequence[str] = (),
) -> Comparison:
    """Compare the runs named by ``refs`` (ids, unique prefixes or jobs) of ``whirr`` on
    ``metrics`` (default: every numeric metric any of them logged), each taken ``at``
    last/min/max/step=N."""
    if not refs:
        raise AnalyticsError("name at least one run to compare")
    overall, named = parse_goals(goals)
    with Session(whirr) as session:
        runs = resolve_runs(whirr, refs)
        table = session.segments(runs)
        if metrics:
            unknown = [m for m in metrics if m not in table.columns]
            if unknown:
                logged = ", ".join(table.columns) or "none"
                raise AnalyticsError(
                    f"no compared run logged {', '.join(map(repr, unknown))} "
                    f"(metrics logged: {logged})"
                )
            chosen = list(dict.fromkeys(metrics))
        else:
            chosen = [k for k, t in table.columns.items() if t in NUMERIC]
        values = _metric_values(session, chosen, at)
    rows = _run_rows(runs) + _config_rows(runs)
    rows += _keyed_rows("summary", [flatten(r.summary) for r in runs])
    rows += [Row("metrics", m, [values.get(run.id, {}).get(m) for run in runs]) for m in chosen]
    for row in rows:
        if row.section in ("summary", "metrics"):
            _mark_best(row, named.get(row.label) or named.get(row.key) or overall)
    return Comparison(runs, at, rows)


def _metric_values(session: Session, metrics: list[str], at: str) -> dict[str, dict[str, Any]]:
    # One row per run: DuckDB aggregates and Python lays out the table; Polars would only
    # add its import time (~0.4 s) to a command whose target is 2x a bare DuckDB read.
    if not metrics:
        at_expression(at, "_idx")  # still reject a bad --at
        return {}
    aggs = ", ".join(f"{at_expression(at, m)}" for m in metrics)
    rows = session.execute(f"SELECT run_id, {aggs} FROM _metrics GROUP BY run_id").fetchall()
    return {row[0]: dict(zip(metrics, row[1:], strict=True)) for row in rows}


def _run_rows(runs: list[schemas.Run]) -> list[Row]:
    return [
        Row("run", "name", [r.name for r in runs]),
        Row("run", "status", [r.status for r in runs]),
        Row("run", "duration_seconds", [r.duration_seconds for r in runs]),
        Row("run", "started_at", [r.started_at for r in runs]),
    ]


def _config_rows(runs: list[schemas.Run]) -> list[Row]:
    rows = _keyed_rows("config", [flatten(r.config) for r in runs])
    for row in rows:
        first = row.values[0]
        row.differs = any(not _same(v, first) for v in row.values[1:])
        row.values = [None if v is _MISSING else v for v in row.values]
    # Differences first: with fifty config keys, the three that vary are what you look for.
    return sorted(rows, key=lambda r: not r.differs)


def _keyed_rows(section: str, dicts: list[dict[str, Any]]) -> list[Row]:
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return [Row(section, k, [d.get(k, _MISSING) for d in dicts]) for k in keys]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _mark_best(row: Row, goal: Goal | None) -> None:
    """Mark the best numeric value(s) of a summary or metric row; ties are all best."""
    row.values = [None if v is _MISSING else v for v in row.values]
    numbers = [v for v in row.values if _is_number(v)]
    row.best = [False] * len(row.values)
    if not numbers or len(row.values) < 2:
        return
    row.goal = goal or default_goal(row.key)
    target = min(numbers) if row.goal == "min" else max(numbers)
    row.best = [_is_number(v) and v == target for v in row.values]
