"""Property: no ``whirr`` command, given any arguments in any project state, prints a
traceback or hangs (issue 18). Every command of the click tree is driven in process
(``CliRunner``) with generated arguments: huge integers, invalid UTF-8 (as Python hands
it over: lone surrogates), empty strings, NaN/inf, long strings, and values that name
real jobs, runs, sweeps and files, in a healthy project and in broken ones.

The cases it found are kept in ``CORPUS`` and run first, every time. Long-running
commands (worker, server, dashboard, watch, ``-f``) are in ``test_cli_long_running.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from cli_fuzz_support import (
    FOLLOW,
    LONG_RUNNING,
    SAFE_ABSOLUTE,
    SPECIAL_VALUES,
    STATES,
    Command,
    check_result,
    command_tree,
    invoke,
    make_template,
    project_copy,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

COMMANDS = [c for c in command_tree() if c.path not in LONG_RUNNING]

#: Cases the fuzz (or issue 18) found: each broke a command once.
CORPUS: list[tuple[str, list[str]]] = [
    ("ok", ["status", "9223372036854775808"]),
    ("ok", ["cancel", "9223372036854775808"]),
    ("ok", ["retry", "9223372036854775808"]),
    ("ok", ["logs", "9223372036854775808"]),
    ("ok", ["runs", "-n", "9223372036854775808"]),
    ("ok", ["runs", "--last", "9223372036854775808"]),
    ("ok", ["events", "--after", "9223372036854775808"]),
    ("ok", ["events", "-n", "9223372036854775808"]),
    ("ok", ["export", "-l", "9223372036854775808"]),
    ("ok", ["submit", "-p", "9223372036854775808", "--", "echo"]),
    ("ok", ["submit", "--after", "9223372036854775808", "--", "echo"]),
    ("ok", ["priority", "2", "9223372036854775808"]),
    ("ok", ["submit", "-n", "\udcff", "--", "echo"]),
    ("ok", ["submit", "--", "echo", "\udcff"]),
    ("ok", ["show", "\udcff"]),
    ("ok", ["compare", "\udcff", "job-1"]),
    ("ok", ["sql", "\udcff"]),
    ("ok", ["runs", "--where", "\udcff"]),
    ("ok", ["runs", "-t", "\udcff"]),
    ("ok", ["submit", "--gpus", "1" + "0" * 30, "--", "echo"]),
    ("ok", ["submit", "--timeout", "", "--", "echo"]),
    ("ok", ["submit", "--timeout", "9" * 400, "--", "echo"]),
    ("ok", ["submit", "--after", ",,", "--", "echo"]),
    ("ok", ["export", "-s", "bogus"]),
    ("ok", ["sweep", "run", "bin.yaml"]),
    ("ok", ["sweep", "run", "-n", "-o", "priority=high", "s.yaml"]),
    ("ok", ["ablate", "run", "ab1", "-r", "100000000", "-n", "--", "echo"]),
    ("ok", ["init", "/proc/x"]),
    ("ok", ["init", "\x00"]),  # found by the fuzz: a NUL reached os.mkdir
    ("ok", ["sweep", "run", "-n", "-o", "gpus=1.5", "s.yaml"]),
    ("ok", ["sql", "COPY (SELECT 1) TO 'copied.csv'"]),
    ("ok", ["compare", "job-1", "job-1", "--at", "9223372036854775808"]),
    ("ok", ["watch", "--once", "-n", "9223372036854775808"]),
    ("binary-config", ["status"]),
    ("binary-config", ["submit", "--", "echo"]),
    ("garbage-config", ["runs"]),
    ("empty-db", ["status"]),
    ("garbage-db", ["status"]),
    ("garbage-db", ["doctor"]),
    ("whirr-is-a-file", ["init"]),
    ("whirr-is-a-file", ["status"]),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("fuzz") / "template")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `token` and `server` default to ~/.whirr/server: keep them inside the test.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WHIRR_SERVER_URL", raising=False)
    monkeypatch.delenv("WHIRR_DATA_DIR", raising=False)


def run_case(template: Path, workdir: Path, state: str, args: list[str]) -> None:
    with project_copy(template, workdir, state):
        result = invoke(args)
    if args and args[0] == "doctor" and result.exit_code == 1 and not result.stderr:
        return  # doctor's report is its answer: exit 1 means it found a problem
    check_result(args, result)


@pytest.mark.parametrize(("state", "args"), CORPUS, ids=[" ".join(a)[:60] for _, a in CORPUS])
def test_corpus(template: Path, tmp_path: Path, state: str, args: list[str]) -> None:
    run_case(template, tmp_path, state, args)


def test_the_tree_is_walked_whole() -> None:
    paths = {c.path for c in command_tree()}
    assert {("sweep", "run"), ("ablate", "run"), ("token", "create"), ("queue", "pause")} <= paths
    assert len(paths) >= 40


# -- generated cases --------------------------------------------------------------------
def _safe(text: str) -> str:
    # A generated absolute path could name anything on this machine; writes go to the
    # example's directory (or to SAFE_ABSOLUTE, where nothing can be created).
    return text if not text.startswith("/") or text in SAFE_ABSOLUTE else "." + text


values = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(st.characters(blacklist_categories=("Cc",)), max_size=30),
    st.text(st.characters(codec="utf-8") | st.sampled_from(["\udc80", "\udcff"]), max_size=8),
).map(_safe)


def _value_for(param: click.Parameter) -> st.SearchStrategy[str]:
    if isinstance(param.type, click.Choice):
        return st.sampled_from([str(c) for c in param.type.choices]) | values
    return values


@st.composite
def arguments(draw: st.DrawFn, command: Command) -> list[str]:
    """Options and arguments of ``command``, each maybe present, with drawn values."""
    args: list[str] = list(command.path)
    params = [p for p in command.command.params if p.name not in ("help", "server")]
    for param in params:
        if not draw(st.booleans()):
            continue
        if isinstance(param, click.Option):
            name = draw(st.sampled_from(param.opts))
            if name in FOLLOW:
                continue
            if param.is_flag or param.count:
                args.append(name)
            else:
                args += [name, draw(_value_for(param))]
        else:
            count = param.nargs if param.nargs > 0 else draw(st.integers(0, 3))
            args += [draw(_value_for(param)) for _ in range(count)]
    if draw(st.booleans()):  # something unexpected at the end
        args.append(draw(values))
    return args


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, list[str]]:
    command = draw(st.sampled_from(COMMANDS))
    state = draw(st.sampled_from(["ok", "ok", "ok", *STATES]))
    return state, draw(arguments(command))


@settings(
    max_examples=int(os.environ.get("WHIRR_FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_no_command_prints_a_traceback(
    template: Path, tmp_path: Path, case: tuple[str, list[str]]
) -> None:
    state, args = case
    run_case(template, tmp_path, state, args)
