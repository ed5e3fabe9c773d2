"""Generate docs/cli.md from every command's --help (`make docs`).

tests/unit/test_cli_docs.py fails when the committed file differs from what this prints,
so the CLI reference cannot go stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from whirr.cli.main import cli  # noqa: E402

OUT = ROOT / "docs" / "cli.md"


def _help(command: click.Command, path: list[str], parent: click.Context | None) -> list[str]:
    ctx = click.Context(
        command,
        info_name=path[-1],
        parent=parent,
        terminal_width=88,
        max_content_width=88,
        help_option_names=["-h", "--help"],
    )
    lines = [
        f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`",
        "",
        "```text",
        command.get_help(ctx).rstrip(),
        "```",
        "",
    ]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                lines += _help(sub, [*path, name], ctx)
    return lines


def render() -> str:
    """The whole reference as Markdown."""
    header = [
        "# CLI reference",
        "",
        "Generated from `--help` by `make docs` (tools/gen_cli_docs.py); do not edit by hand.",
        "Options that read an environment variable say so (`WHIRR_*`).",
        "",
    ]
    return "\n".join(header + _help(cli, ["whirr"], None) + ORIGINAL)


#: Options of the original whirr (0.5.3) still accepted but not shown by --help, and the
#: spellings whose meaning changed (SPEC.md wins where the two collide).
ORIGINAL = [
    "## The original whirr's options",
    "",
    "Scripts written for the original whirr (0.5.3) keep working: these spellings are",
    "accepted with the original's meaning, though `--help` shows only the current ones.",
    "",
    "| original | here |",
    "|---|---|",
    "| `whirr worker --device N` | the same as `--gpu N` (shown in `--help` as an alias) |",
    "| `whirr runs --last N` | `-n/--limit N` |",
    "| `whirr compare --metrics` | accepted, no effect: metric rows are always compared |",
    "| `whirr compare --config / --no-config` | `--no-config` leaves out the config rows |",
    "| `whirr export OUT.csv` | `-o OUT.csv` (a last argument ending in a known suffix"
    " that names no run) |",
    "| `whirr export --run/-r ID` | every run whose id starts with ID (repeatable) |",
    "| `whirr export --limit/-l N` | the newest N of the runs chosen |",
    "",
    "Where the two collide, the current meaning (SPEC.md) wins:",
    "",
    "- `whirr compare -m`: the original's on/off switch for metric rows; here `-m METRIC`",
    "  names a metric to compare (`--metrics` alone still means the switch).",
    "- `whirr export -m`: the original's short form of `--metrics` (metric history); here",
    "  `-m METRIC` picks metrics for `--metrics` (spell the switch `--metrics`).",
    "",
]


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(ROOT)}")
