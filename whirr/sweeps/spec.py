"""Reading a sweep file into a validated ``SweepSpec``, with errors that name the key and
the line (from YAML node marks). Pure: it parses text, the caller reads the file.

```yaml
name: lr-sweep                     # optional; default: the file's name
program: python train.py --epochs 3
method: random                     # grid (default), random or bayes (Optuna's TPE)
max_runs: 8                        # required for random and bayes, caps a grid
seed: 0                            # random and bayes sweeps: same seed, same runs
max_concurrent: 2                  # bayes: how many of its jobs are queued or running at once
early_terminate: {type: median, min_iter: 3}   # prune runs whose metric lags (any method)
metric: {name: val_loss, goal: minimize}   # what `whirr sweep status` ranks by
tags: [lr]                         # added to every job (besides sweep:<name>)
submit: {priority: 5}              # passed through to submit
fail_fast: 3                       # pause after 3 identical failures (false: never)
parameters:
  lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-1}
  batch_size: {values: [32, 64]}
  epochs: 3                        # a constant (`value: 3` works too)
  layers: [[64, 64], [128]]        # a bare list means `values`
```
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
from collections.abc import Collection
from typing import Any, Literal

import msgspec
import yaml

from whirr.services.errors import InvalidRequest

Method = Literal["grid", "random", "bayes"]
METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "categorical")
#: ``early_terminate`` types and the keys each takes (W&B's names; see
#: ``whirr.sweeps.optuna_study.pruner`` for what they become in Optuna).
EARLY_TERMINATE = {
    "median": ("type", "min_iter", "min_trials"),
    "hyperband": ("type", "min_iter", "max_iter", "eta"),
}
#: A bayes sweep's default ``max_concurrent``.
DEFAULT_MAX_CONCURRENT = 2
TOP_KEYS = (
    "name",
    "program",
    "method",
    "max_runs",
    "seed",
    "metric",
    "tags",
    "submit",
    "parameters",
    "description",
    "fail_fast",
    "early_terminate",
    "max_concurrent",
)
PARAM_KEYS = ("values", "value", "distribution", "min", "max")
GOALS = {"minimize": "minimize", "min": "minimize", "maximize": "maximize", "max": "maximize"}
#: Names become job names, tags and stream names: keep them to safe characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class SweepFileError(InvalidRequest):
    """A sweep file that cannot be used; the message says where and why."""


class Parameter(msgspec.Struct, frozen=True):
    """One swept parameter: discrete ``values``, or a ``distribution`` over [min, max]."""

    name: str
    values: list[Any] | None = None
    distribution: str | None = None
    min: float | None = None
    max: float | None = None


class SweepSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A validated sweep file."""

    program: str
    argv: list[str]
    parameters: list[Parameter]
    raw_parameters: dict[str, Any]
    method: Method = "grid"
    name: str | None = None
    max_runs: int | None = None
    seed: int | None = None
    metric: str | None = None
    goal: Literal["minimize", "maximize"] = "minimize"
    tags: list[str] = []
    submit: dict[str, Any] = {}
    #: Pause after this many identical first failures (``whirr.sweeps.failfast``); 0: off.
    fail_fast: int = 3
    #: ``{type: median|hyperband, min_iter, ...}``: prune runs whose metric lags
    #: (``whirr.sweeps.bayes``); None: never.
    early_terminate: dict[str, Any] | None = None
    #: bayes: how many of its jobs are queued or running at once (each end proposes the next).
    max_concurrent: int | None = None


class _Reader:
    """Builds values from YAML nodes and raises errors located at a node."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        try:
            self.loader = yaml.SafeLoader(text)
        except yaml.YAMLError as exc:  # the reader refuses control characters at once
            raise SweepFileError(f"{source}: not valid YAML: {exc}") from None

    def close(self) -> None:
        self.loader.dispose()

    def error(self, node: yaml.Node | None, path: str, message: str) -> SweepFileError:
        where = f", line {node.start_mark.line + 1}" if node is not None else ""
        key = f"{path}: " if path else ""
        return SweepFileError(f"{self.source}{where}: {key}{message}")

    def root(self) -> yaml.Node | None:
        try:
            return self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f", line {mark.line + 1}" if mark is not None else ""
            raise SweepFileError(
                f"{self.source}{line}: not valid YAML: {exc.problem or exc.context}"
            ) from None
        except yaml.YAMLError as exc:
            raise SweepFileError(f"{self.source}: not valid YAML: {exc}") from None

    def value(self, node: yaml.Node, path: str) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.error(node, path, f"cannot read this value ({exc})") from None

    def mapping(
        self, node: yaml.Node, path: str, allowed: Collection[str] | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The entries of a mapping node by key: (key node, value node)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, path, "must be a mapping of `key: value` lines")
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node, path)
            where = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                raise self.error(key_node, path, f"keys must be names, not {key!r}")
            if key in entries:
                raise self.error(key_node, where, "appears twice")
            if allowed is not None and key not in allowed:
                raise self.error(key_node, where, f"unknown key{_suggest(key, allowed)}")
            entries[key] = (key_node, value_node)
        return entries


def _suggest(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f" (expected one of: {', '.join(choices)}){hint}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_value(reader: _Reader, node: yaml.Node, path: str, value: Any) -> None:
    """Reject values no program could be handed: NaN/inf, or nested mappings in lists."""
    if isinstance(value, float) and not math.isfinite(value):
        raise reader.error(node, path, f"{value} is not a usable value")
    if isinstance(value, list):
        for item in value:
            _check_value(reader, node, path, item)
    if isinstance(value, dict):
        for item in value.values():
            _check_value(reader, node, path, item)


def _parameter(reader: _Reader, name: str, node: yaml.Node) -> Parameter:
    path = f"parameters.{name}"
    if isinstance(node, yaml.SequenceNode):  # `lr: [0.1, 0.01]` means values
        values = reader.value(node, path)
        if not values:
            raise reader.error(node, path, "the list of values is empty")
        _check_value(reader, node, path, values)
        return Parameter(name, values=values)
    if isinstance(node, yaml.ScalarNode):  # `epochs: 3` means a constant
        value = reader.value(node, path)
        _check_value(reader, node, path, value)
        return Parameter(name, values=[value])
    entries = reader.mapping(node, path, PARAM_KEYS)
    given = set(entries)
    if "value" in given and "values" in given:
        raise reader.error(node, path, "give `value` or `values`, not both")
    if (
        "distribution" in entries
        and reader.value(entries["distribution"][1], f"{path}.distribution") == "categorical"
    ):
        if "values" not in entries or given & {"min", "max", "value"}:
            raise reader.error(node, path, "a categorical distribution takes `values` (a list)")
        given.discard("distribution")
        entries = {k: v for k, v in entries.items() if k != "distribution"}
    if given & {"values", "value"}:
        if given & {"distribution", "min", "max"}:
            raise reader.error(node, path, "give `values` or a `distribution`, not both")
        if "value" in entries:
            value = reader.value(entries["value"][1], f"{path}.value")
            _check_value(reader, entries["value"][1], f"{path}.value", value)
            return Parameter(name, values=[value])
        values_node = entries["values"][1]
        values = reader.value(values_node, f"{path}.values")
        if not isinstance(values, list) or not values:
            raise reader.error(values_node, f"{path}.values", "must be a non-empty list")
        _check_value(reader, values_node, f"{path}.values", values)
        return Parameter(name, values=values)
    if "distribution" not in entries:
        raise reader.error(node, path, "needs `values` (a list) or a `distribution` with min/max")
    dist_node = entries["distribution"][1]
    distribution = reader.value(dist_node, f"{path}.distribution")
    if distribution not in DISTRIBUTIONS:
        raise reader.error(
            dist_node,
            f"{path}.distribution",
            f"unknown distribution {distribution!r}{_suggest(str(distribution), DISTRIBUTIONS)}",
        )
    bounds: dict[str, float] = {}
    for bound in ("min", "max"):
        if bound not in entries:
            raise reader.error(node, path, f"a {distribution} distribution needs `{bound}`")
        bound_node = entries[bound][1]
        value = reader.value(bound_node, f"{path}.{bound}")
        if not _is_number(value) or not math.isfinite(value):
            raise reader.error(bound_node, f"{path}.{bound}", f"must be a number, not {value!r}")
        if distribution == "int_uniform" and not isinstance(value, int):
            raise reader.error(bound_node, f"{path}.{bound}", f"must be an integer, not {value!r}")
        bounds[bound] = value
    if bounds["min"] > bounds["max"]:
        raise reader.error(
            entries["min"][1],
            f"{path}.min",
            f"min ({bounds['min']}) is above max ({bounds['max']})",
        )
    if distribution == "log_uniform" and bounds["min"] <= 0:
        raise reader.error(
            entries["min"][1],
            f"{path}.min",
            "log_uniform needs min > 0 (it draws the logarithm uniformly)",
        )
    return Parameter(name, distribution=distribution, min=bounds["min"], max=bounds["max"])


def _name(reader: _Reader, node: yaml.Node, path: str) -> str:
    value = reader.value(node, path)
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise reader.error(
            node,
            path,
            f"{value!r} is not a usable name (letters, digits, "
            "'.', '_', '-'; starting with a letter or digit)",
        )
    return value


def _int(reader: _Reader, node: yaml.Node, path: str, minimum: int) -> int:
    value = reader.value(node, path)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise reader.error(node, path, f"must be an integer >= {minimum}, not {value!r}")
    return value


def _program(reader: _Reader, node: yaml.Node) -> tuple[str, list[str]]:
    value = reader.value(node, "program")
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return shlex.join(value), list(value)
    if not isinstance(value, str) or not value.strip():
        raise reader.error(node, "program", "must be the command to run, e.g. `python train.py`")
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise reader.error(node, "program", f"cannot split into arguments: {exc}") from None
    return value, argv


def _metric(reader: _Reader, node: yaml.Node) -> tuple[str, str]:
    if isinstance(node, yaml.ScalarNode):
        value = reader.value(node, "metric")
        if not isinstance(value, str) or not value:
            raise reader.error(node, "metric", "must be a metric name or {name, goal}")
        return value, "minimize"
    entries = reader.mapping(node, "metric", ("name", "goal"))
    if "name" not in entries:
        raise reader.error(node, "metric", "needs `name`")
    name = reader.value(entries["name"][1], "metric.name")
    if not isinstance(name, str) or not name:
        raise reader.error(entries["name"][1], "metric.name", "must be a metric name")
    goal = "minimize"
    if "goal" in entries:
        goal_node = entries["goal"][1]
        word = reader.value(goal_node, "metric.goal")
        if word not in GOALS:
            raise reader.error(
                goal_node, "metric.goal", f"must be minimize or maximize, not {word!r}"
            )
        goal = GOALS[word]
    return name, goal


def _fail_fast(reader: _Reader, node: yaml.Node) -> int:
    """``fail_fast: N`` (jobs), ``false`` (off, like 0) or ``true`` (the default, 3)."""
    value = reader.value(node, "fail_fast")
    if value is True:
        return 3
    if value is False:
        return 0
    count = _int(reader, node, "fail_fast", 0)
    if count > 100_000:
        raise reader.error(node, "fail_fast", f"must be at most 100000, not {count}")
    return count


def _early_terminate(reader: _Reader, node: yaml.Node) -> dict[str, Any]:
    """``{type: median|hyperband, ...}`` with its keys checked (integers >= 1)."""
    entries = reader.mapping(node, "early_terminate")
    if "type" not in entries:
        raise reader.error(node, "early_terminate", "needs `type` (median or hyperband)")
    type_node = entries["type"][1]
    kind = reader.value(type_node, "early_terminate.type")
    if kind not in EARLY_TERMINATE:
        raise reader.error(
            type_node,
            "early_terminate.type",
            f"unknown type {kind!r}{_suggest(str(kind), list(EARLY_TERMINATE))}",
        )
    allowed = EARLY_TERMINATE[kind]
    found: dict[str, Any] = {"type": kind}
    for key, (key_node, value_node) in entries.items():
        if key == "type":
            continue
        if key not in allowed:
            raise reader.error(
                key_node,
                f"early_terminate.{key}",
                f"unknown key for {kind}{_suggest(key, allowed)}",
            )
        found[key] = _int(reader, value_node, f"early_terminate.{key}", 2 if key == "eta" else 1)
    if "max_iter" in found and found["max_iter"] < found.get("min_iter", 1):
        raise reader.error(node, "early_terminate.max_iter", "must be at least min_iter")
    return found


def parse_spec(
    text: str, source: str = "<sweep>", submit_options: Collection[str] | None = None
) -> SweepSpec:
    """Validate a sweep file's text. ``submit_options``: the keys allowed under ``submit``
    (None: any). Raises ``SweepFileError`` naming the file, line and key."""
    reader = _Reader(text, source)
    try:
        return _parse(reader, submit_options)
    finally:
        reader.close()


def _parse(reader: _Reader, submit_options: Collection[str] | None) -> SweepSpec:
    root = reader.root()
    if root is None:
        raise reader.error(None, "", "the file is empty; it needs `program` and `parameters`")
    top = reader.mapping(root, "", TOP_KEYS)
    for required in ("program", "parameters"):
        if required not in top:
            raise reader.error(root, "", f"missing `{required}`")
    fields: dict[str, Any] = {}
    fields["program"], fields["argv"] = _program(reader, top["program"][1])
    if "name" in top:
        fields["name"] = _name(reader, top["name"][1], "name")
    method_node = top["method"][1] if "method" in top else None
    if method_node is not None:
        method = reader.value(method_node, "method")
        if method not in METHODS:
            raise reader.error(
                method_node, "method", f"unknown method {method!r}{_suggest(str(method), METHODS)}"
            )
        fields["method"] = method
    if "max_runs" in top:
        fields["max_runs"] = _int(reader, top["max_runs"][1], "max_runs", 1)
    if "seed" in top:
        fields["seed"] = _int(reader, top["seed"][1], "seed", 0)
    if "metric" in top:
        fields["metric"], fields["goal"] = _metric(reader, top["metric"][1])
    if "fail_fast" in top:
        fields["fail_fast"] = _fail_fast(reader, top["fail_fast"][1])
    if "early_terminate" in top:
        fields["early_terminate"] = _early_terminate(reader, top["early_terminate"][1])
        if "metric" not in fields:
            raise reader.error(
                top["early_terminate"][0], "early_terminate", "needs `metric` (what it reads)"
            )
    if "max_concurrent" in top:
        fields["max_concurrent"] = _int(reader, top["max_concurrent"][1], "max_concurrent", 1)
    if "tags" in top:
        tags = reader.value(top["tags"][1], "tags")
        tags = [tags] if isinstance(tags, str) else tags
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise reader.error(top["tags"][1], "tags", "must be a list of words")
        fields["tags"] = tags
    if "submit" in top:
        entries = reader.mapping(top["submit"][1], "submit", submit_options)
        fields["submit"] = {k: reader.value(v, f"submit.{k}") for k, (_, v) in entries.items()}
    params_node = top["parameters"][1]
    entries = reader.mapping(params_node, "parameters")
    if not entries:
        raise reader.error(params_node, "parameters", "give at least one parameter")
    parameters = []
    for name, (key_node, value_node) in entries.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
            raise reader.error(
                key_node, f"parameters.{name}", "is not a usable option name (it becomes --NAME)"
            )
        parameters.append(_parameter(reader, name, value_node))
    fields["parameters"] = parameters
    fields["raw_parameters"] = reader.value(params_node, "parameters")
    method = fields.get("method", "grid")
    if method in ("random", "bayes") and "max_runs" not in fields:
        raise reader.error(method_node, "method", f"{method} sweeps need `max_runs`")
    if method == "bayes" and "metric" not in fields:
        raise reader.error(method_node, "method", "bayes sweeps need `metric` (what they optimise)")
    if method == "bayes" and "max_concurrent" not in fields:
        fields["max_concurrent"] = DEFAULT_MAX_CONCURRENT
    if method != "bayes" and "max_concurrent" in fields:
        raise reader.error(
            top["max_concurrent"][0],
            "max_concurrent",
            "only a bayes sweep proposes jobs as others end",
        )
    if fields.get("method", "grid") == "grid":
        for param, (_, value_node) in zip(parameters, entries.values(), strict=True):
            if param.distribution is not None:
                raise reader.error(
                    value_node,
                    f"parameters.{param.name}",
                    "a grid sweep needs a list of `values` (use `method: random` to draw "
                    "from a distribution)",
                )
    return SweepSpec(**fields)
