"""A sweep's trials replayed into an in-memory Optuna study: the next point (TPE) and
whether a running trial is pruned (median or Hyperband). Pure: the trials are given.

Nothing of Optuna's is stored. Every question builds a fresh study from the trials the
log and the runs' files hold, in the sweep's order, with a sampler seeded from the
sweep's seed and the point's index: the same trials give the same answer, so a rebuilt
log proposes what the live one did, and ``--seed`` redoes a sweep given the same
completion order. Optuna is imported here only (the ``sweeps`` extra).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    import optuna

    from whirr.sweeps.spec import Parameter

TrialState = Literal["complete", "pruned", "failed", "running"]
#: A fixed study name: Hyperband assigns trials to brackets by hashing it with the
#: trial's number, so a random name (Optuna's default) would change the answers.
STUDY_NAME = "whirr-sweep"
#: TPE draws this many points at random before it models (Optuna's default is 10).
STARTUP_TRIALS = 5


class Trial(msgspec.Struct, frozen=True):
    """One point of the sweep as the study sees it."""

    index: int
    config: dict[str, Any]
    state: TrialState
    #: The metric's final value (complete trials).
    value: float | None = None
    #: The metric by step, as logged (the last value of each step).
    steps: dict[int, float] = {}


def require() -> None:
    """``ModuleNotFoundError`` (named ``optuna``: the CLI says which extra brings it)
    unless Optuna can be imported here."""
    import optuna  # noqa: F401


def first_points(
    parameters: Sequence[Parameter], count: int, *, goal: str, seed: int
) -> list[dict[str, Any]]:
    """The points a bayes sweep queues when it is created (none ended yet): what
    ``propose`` gives for points 0..count-1, each with the earlier ones running."""
    trials: list[Trial] = []
    for index in range(count):
        config = propose(parameters, trials, index=index, goal=goal, seed=seed)
        trials.append(Trial(index, config, "running"))
    return [t.config for t in trials]


def point_seed(seed: int, index: int) -> int:
    """The sampler's seed for point ``index`` of a sweep seeded ``seed`` (fits Optuna's
    32-bit seeds)."""
    return (seed * 1_000_003 + index) % 2**32


@contextmanager
def _quiet() -> Iterator[None]:
    """Optuna logs each trial and warns about experimental options: neither is ours to
    show (a worker's output is the jobs')."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def distributions(parameters: Sequence[Parameter]) -> dict[str, Any]:
    """Optuna's distribution of every swept parameter (constants are left out: they are
    not searched). A list of values is searched by its index, so any value (a list, a
    mapping) can be a choice."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    found: dict[str, Any] = {}
    for p in parameters:
        if p.values is not None:
            if len(p.values) > 1:
                found[p.name] = CategoricalDistribution(list(range(len(p.values))))
            continue
        assert p.min is not None and p.max is not None
        if p.distribution == "int_uniform":
            found[p.name] = IntDistribution(int(p.min), int(p.max))
        else:
            log = p.distribution == "log_uniform"
            found[p.name] = FloatDistribution(float(p.min), float(p.max), log=log)
    return found


def _internal(parameters: Sequence[Parameter], config: Mapping[str, Any]) -> dict[str, Any]:
    """A job's config as Optuna's params (choices by index); None when it does not fit."""
    params: dict[str, Any] = {}
    for p in parameters:
        value = config.get(p.name)
        if p.values is not None:
            if len(p.values) > 1:
                params[p.name] = p.values.index(value) if value in p.values else 0
            continue
        params[p.name] = value
    return params


def _external(parameters: Sequence[Parameter], params: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna's params as a job's config, in the file's order; floats keep
    ``SIGNIFICANT_DIGITS`` (the command and the config hold the same value)."""
    from whirr.sweeps.expand import SIGNIFICANT_DIGITS

    config: dict[str, Any] = {}
    for p in parameters:
        if p.values is not None:
            config[p.name] = p.values[params[p.name]] if len(p.values) > 1 else p.values[0]
        elif p.distribution == "int_uniform":
            config[p.name] = int(params[p.name])
        else:
            assert p.min is not None and p.max is not None
            rounded = float(f"{params[p.name]:.{SIGNIFICANT_DIGITS}g}")
            config[p.name] = min(max(rounded, p.min), p.max)
    return config


def pruner(early_terminate: Mapping[str, Any] | None) -> optuna.pruners.BasePruner:
    """W&B's ``early_terminate`` as an Optuna pruner.

    ``median``: a trial is pruned when its value at a step is worse than the median of
    the finished trials' values at that step, after ``min_iter`` steps (default 1) and
    once ``min_trials`` trials finished (default 3). ``hyperband``: Optuna's Hyperband
    with ``min_resource = min_iter`` (default 1), ``max_resource = max_iter`` (default:
    Optuna's estimate from the first trial to finish) and ``reduction_factor = eta``
    (default 3); steps are the resource."""
    import optuna

    if early_terminate is None:
        return optuna.pruners.NopPruner()
    if early_terminate["type"] == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(early_terminate.get("min_trials", 3)),
            n_warmup_steps=int(early_terminate.get("min_iter", 1)),
        )
    return optuna.pruners.HyperbandPruner(
        min_resource=int(early_terminate.get("min_iter", 1)),
        max_resource=early_terminate.get("max_iter", "auto"),
        reduction_factor=int(early_terminate.get("eta", 3)),
    )


def _replays_steps(pruner: optuna.pruners.BasePruner) -> bool:
    """Hyperband keeps its rungs in the trials it prunes (``should_prune`` writes them),
    so its trials are replayed step by step; the median pruner reads only the values."""
    import optuna

    return isinstance(
        pruner, optuna.pruners.HyperbandPruner | optuna.pruners.SuccessiveHalvingPruner
    )


def study(
    parameters: Sequence[Parameter],
    trials: Sequence[Trial],
    *,
    goal: str,
    seed: int,
    early_terminate: Mapping[str, Any] | None = None,
) -> optuna.Study:
    """A study holding ``trials`` in the given order: complete, pruned and failed ones
    told, running ones asked and left open (TPE's constant liar keeps the next point
    away from them)."""
    import optuna

    sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=STARTUP_TRIALS, constant_liar=True
    )
    chosen = pruner(early_terminate)
    built = optuna.create_study(
        study_name=STUDY_NAME,
        direction="maximize" if goal == "maximize" else "minimize",
        sampler=sampler,
        pruner=chosen,
    )
    dists = distributions(parameters)
    step_by_step = _replays_steps(chosen)
    for trial in trials:
        params = _internal(parameters, trial.config)
        if trial.state != "running" and not step_by_step:
            built.add_trial(_frozen(trial, params, dists))
            continue
        built.enqueue_trial(params, skip_if_exists=False)
        asked = built.ask(dists)
        for step in sorted(trial.steps):
            asked.report(trial.steps[step], step)
            if step_by_step:
                asked.should_prune()
        if trial.state == "running":
            continue
        if trial.state == "complete":
            built.tell(asked, trial.value)
        else:
            state = optuna.trial.TrialState
            built.tell(asked, state=state.PRUNED if trial.state == "pruned" else state.FAIL)
    return built


def _frozen(trial: Trial, params: dict[str, Any], dists: dict[str, Any]) -> Any:
    import optuna

    state = {
        "complete": optuna.trial.TrialState.COMPLETE,
        "pruned": optuna.trial.TrialState.PRUNED,
        "failed": optuna.trial.TrialState.FAIL,
    }[trial.state]
    return optuna.trial.create_trial(
        params=params,
        distributions=dists,
        value=trial.value if trial.state == "complete" else None,
        intermediate_values=dict(trial.steps),
        state=state,
    )


def propose(
    parameters: Sequence[Parameter],
    trials: Sequence[Trial],
    *,
    index: int,
    goal: str,
    seed: int,
) -> dict[str, Any]:
    """The config of point ``index``: TPE's next point given ``trials`` (its first
    ``STARTUP_TRIALS`` points are drawn at random), seeded by ``seed`` and ``index``."""
    with _quiet():
        built = study(parameters, trials, goal=goal, seed=point_seed(seed, index))
        asked = built.ask(distributions(parameters))
        return _external(parameters, asked.params)


def pruned(
    parameters: Sequence[Parameter],
    others: Sequence[Trial],
    running: Trial,
    *,
    goal: str,
    early_terminate: Mapping[str, Any],
) -> bool:
    """Would the pruner stop ``running`` (its steps so far) given the sweep's ``others``?
    True when it says so at any of its steps: a check runs now and then, not per step."""
    with _quiet():
        built = study(parameters, others, goal=goal, seed=0, early_terminate=early_terminate)
        built.enqueue_trial(_internal(parameters, running.config), skip_if_exists=False)
        asked = built.ask(distributions(parameters))
        verdict = False
        for step in sorted(running.steps):
            asked.report(running.steps[step], step)
            verdict = asked.should_prune() or verdict
        return verdict
