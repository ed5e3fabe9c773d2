"""Issue 18's bad-input repros, one by one: each is refused with one ``Error:`` line that
names what is wrong, nothing is recorded, and nothing outside the command's own output is
touched."""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import pytest
import yaml
from cli_fuzz_support import check_result, invoke

from whirr.config import BOUNDS, DEFAULT_CONFIG_TEXT, Config, load_config
from whirr.project import Project

ROOT = Path(__file__).resolve().parents[2]
BIG = "9223372036854775808"  # 2^63: one past what SQLite and PostgreSQL hold


@pytest.fixture
def here(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("HOME", str(project.root.parent))
    first = invoke(["submit", "-n", "one", "--", "echo", "1"])
    assert first.exit_code == 0, first.stderr
    return project


def refused(args: list[str], *words: str) -> str:
    result = invoke(args)
    assert result.exit_code != 0, (args, result.stdout)
    check_result(args, result)
    assert "internal error" not in result.stderr
    for word in words:
        assert word in result.stderr, (args, result.stderr)
    return result.stderr


def event_count() -> int:
    result = invoke(["events", "-n", "100000", "--json"])
    assert result.exit_code == 0, result.stderr
    return len(result.stdout.splitlines())


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["status", BIG], "JOB_ID"),
        (["cancel", BIG], "JOB_ID"),
        (["retry", BIG], "JOB_ID"),
        (["logs", BIG], "JOB_ID"),
        (["runs", "-n", BIG], "--limit"),
        (["events", "--after", BIG], "--after"),
        (["submit", "-p", BIG, "--", "echo"], "--priority"),
        (["submit", "--after", BIG, "--", "echo"], "--after"),
        (["priority", "1", BIG], "PRIORITY"),
        (["submit", "--gpus", "1" + "0" * 30, "--", "echo"], "--gpus"),
        (["submit", "--timeout", "", "--", "echo"], "--timeout"),
        (["submit", "--timeout", "9" * 400, "--", "echo"], "--timeout"),
        (["submit", "--after", ",,", "--", "echo"], "--after"),
        (["export", "-s", "bogus"], "--status"),
        (["submit", "-n", "\udcff", "--", "echo"], "the value of -n"),
        (["submit", "--", "echo", "a\udcffb"], "not valid UTF-8"),
        (["show", "\udcff"], "not valid UTF-8"),
        (["compare", "\udcff", "job-1"], "not valid UTF-8"),
        (["sql", "\udcff"], "not valid UTF-8"),
        (["runs", "--where", "\udcff"], "the value of --where"),
        (["runs", "-t", "\udcff"], "the value of -t"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_field(
    here: Project, args: list[str], names: str
) -> None:
    before = event_count()
    refused(args, names)
    assert event_count() == before


SWEEP = "program: echo\nparameters: {{lr: [1]}}\nsubmit: {{{option}}}\n"


@pytest.mark.parametrize(
    "option",
    [
        "priority: high",
        "priority: 1.5",
        "priority: true",
        "after_any: 7",
        "gpus: 1.5",
        "env: {A: 1}",
        "env: {A: [1]}",
        "retries: 1000",
        "timeout_seconds: .nan",
    ],
)
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_mistyped_sweep_option_is_refused_before_anything_is_appended(
    here: Project, option: str, dry_run: bool
) -> None:
    (here.root / "s.yaml").write_text(SWEEP.format(option=option))
    before = event_count()
    key = option.split(":")[0]
    refused(["sweep", "run", *(["-n"] if dry_run else []), "-p", "sw", "s.yaml"], key)
    assert event_count() == before
    assert invoke(["status"]).exit_code == 0


@pytest.mark.parametrize("option", ["priority=high", "gpus=1.5", "after_any=7", "retries=1000"])
def test_a_mistyped_option_flag_is_refused_for_sweeps_and_ablations(
    here: Project, option: str
) -> None:
    (here.root / "s.yaml").write_text("program: echo\nparameters: {lr: [1]}\n")
    assert invoke(["ablate", "init", "ab1", "-m", "loss"]).exit_code == 0
    assert invoke(["ablate", "add", "ab1", "lr=1"]).exit_code == 0
    before = event_count()
    key = option.split("=")[0]
    refused(["sweep", "run", "-o", option, "s.yaml"], "-o/--option", key)
    refused(["ablate", "run", "ab1", "-o", option, "--", "echo"], "-o/--option", key)
    assert event_count() == before


def test_huge_sweeps_and_studies_are_refused_before_expanding(here: Project) -> None:
    values = "[" + ", ".join(str(i) for i in range(10)) + "]"
    grid = "program: echo\nparameters:\n" + "".join(f"  p{i}: {values}\n" for i in range(12))
    (here.root / "grid.yaml").write_text(grid)  # 10^12 points
    (here.root / "random.yaml").write_text(
        "program: echo\nmethod: random\nmax_runs: 1000000000\n"
        "parameters: {a: {distribution: uniform, min: 0, max: 1}}\n"
    )
    (here.root / "capped.yaml").write_text(grid + "max_runs: 3\n")
    assert invoke(["ablate", "init", "ab1", "-m", "loss"]).exit_code == 0
    for i in range(10):
        assert invoke(["ablate", "add", "ab1", f"lr={i}", "-n", f"d{i}"]).exit_code == 0
    started = time.monotonic()
    refused(["sweep", "run", "-n", "grid.yaml"], "1000000000000 jobs", "at most 100000")
    refused(["sweep", "run", "-n", "random.yaml"], "max_runs", "at most 100000")
    refused(["ablate", "run", "ab1", "-r", "100000000", "-n", "--", "echo"], "--replicates")
    # 11 conditions x 10000 replicates: each bound alone holds, the product does not.
    refused(["ablate", "run", "ab1", "-r", "10000", "-n", "--", "echo"], "at most 100000")
    assert time.monotonic() - started < 10
    capped = invoke(["sweep", "run", "-n", "capped.yaml"])
    assert capped.exit_code == 0 and "3 job(s)" in capped.stdout


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (b"\x00\xff\xfe binary", "not UTF-8"),
        (b"heartbeat_timeout: .inf\n", "heartbeat_timeout"),
        (b"kill_grace_period: .nan\n", "kill_grace_period"),
        (b"max_attempts: 100000000000000000000000\n", "max_attempts"),
        (b"reserve_after: -1\n", "reserve_after"),
        (b"notify: {stuck_after: .nan}\n", "notify.stuck_after"),
        (b"poll_interval: 0\n", "poll_interval"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_key(here: Project, text: bytes, key: str) -> None:
    here.config_path.write_bytes(text)
    refused(["status"], "config.yaml", key)
    refused(["submit", "--", "echo"], key)


def test_a_binary_sweep_file_is_one_line(here: Project) -> None:
    (here.root / "bin.yaml").write_bytes(b"\x00\xff\xfe binary")
    refused(["sweep", "run", "bin.yaml"], "bin.yaml", "not UTF-8")


def test_init_where_it_cannot_be_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    refused(["init", "/proc/x"], "/proc/x")
    (tmp_path / ".whirr").write_text("a file\n")
    refused(["init"], ".whirr", "not a folder")
    (tmp_path / "f").write_text("a file\n")
    refused(["init", "f/x"], "f/x")


def test_server_data_dir_that_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hostname").write_text("a file\n")
    refused(["server", "-p", "0", "-d", str(tmp_path / "hostname")], "--data-dir", "not a folder")


# -- export -o and sql ----------------------------------------------------------------------
def test_export_replaces_only_a_regular_file(here: Project) -> None:
    target = here.root / "real.csv"
    target.write_text("old\n")
    link = here.root / "link.csv"
    link.symlink_to(target)
    fifo = here.root / "fifo.csv"
    os.mkfifo(fifo)
    refused(["export", "-o", str(link)], "symlink")
    refused(["export", "-o", str(fifo)], "FIFO")
    assert link.is_symlink() and target.read_text() == "old\n"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    if os.geteuid() == 0:  # a device of our own (as root, -o /dev/null replaced the device)
        device = here.root / "null.csv"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        refused(["export", "-o", str(device)], "device")
        assert stat.S_ISCHR(device.lstat().st_mode)
    assert invoke(["export", "-o", str(target)]).exit_code == 0  # a regular file: replaced
    assert target.read_text().startswith("id,name")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("COPY (SELECT 1) TO 'copied.csv'", ["COPY"]),
        ("SELECT 1; COPY (SELECT 1) TO 'copied.csv'", ["COPY"]),
        ("ATTACH 'copied.db'", ["ATTACH"]),
        ("INSTALL httpfs", ["LOAD"]),
        ("SET enable_external_access = true", ["SET"]),
        ("SELECT * FROM read_csv('/etc/passwd')", ["Permission"]),
        ("SELECT * FROM read_text('copied.csv')", ["Permission"]),
    ],
)
def test_sql_only_reads(here: Project, query: str, words: list[str]) -> None:
    (here.root / "copied.csv").write_text("a\n1\n")
    refused(["sql", query], *words)
    assert not (here.root / "copied.db").exists()
    assert (here.root / "copied.csv").read_text() == "a\n1\n"
    ok = invoke(["sql", "SELECT count(*) AS n FROM runs", "-o", "csv"])
    assert ok.exit_code == 0 and ok.stdout == "n\n0\n"


# -- the generated config.yaml and docs/configuration.md --------------------------------------
def _examples(text: str) -> list[str]:
    """Each commented-out block (a `# key:` line and the `#   ...` lines under it), with
    its comment marks taken off, put back into the text."""
    lines = text.splitlines()
    variants = []
    for i, line in enumerate(lines):
        if re.match(r"# [a-z_]+:", line):
            block = [i]
            block += [j for j in range(i + 1, len(lines)) if lines[j].startswith("#   ")][:99]
            variant = list(lines)
            for j in block:
                variant[j] = variant[j][2:]
            variants.append("\n".join(variant) + "\n")
    return variants


def test_every_commented_example_of_the_generated_config_loads(tmp_path: Path) -> None:
    variants = _examples(DEFAULT_CONFIG_TEXT)
    assert variants, "the template has no commented example"
    for text in variants:
        parsed = yaml.safe_load(text)
        path = tmp_path / "config.yaml"
        path.write_text(text)
        config = load_config(path)
        if "notify" in parsed:
            assert config.notify.command == 'notify-send whirr "$WHIRR_JOB_NAME $WHIRR_EVENT"'
            assert config.notify.stuck_after == 1800
    assert load_config(_write(tmp_path, DEFAULT_CONFIG_TEXT)) == Config()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plain.yaml"
    path.write_text(text)
    return path


def test_configuration_doc_lists_every_key_default_and_bound() -> None:
    assert "docs/configuration.md" in DEFAULT_CONFIG_TEXT
    doc = (ROOT / "docs" / "configuration.md").read_text()
    defaults = Config()
    for key in Config.__struct_fields__:
        assert f"`{key}`" in doc, key
    for key in ("notify.command", "notify.webhook", "notify.events", "notify.stuck_after"):
        assert f"`{key}`" in doc, key
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_.]+)` \|.*$", doc, re.M)}
    for key, (low, high, _) in BOUNDS.items():
        row = rows[key]
        assert f"{low:g}" in row and f"{high:g}" in row, row
        if "." not in key:
            assert f"`{getattr(defaults, key):g}`" in row, (key, row)
