"""docs/getting-started.md works as written (issue 20).

Its ``bash`` blocks run in order as one script in an empty directory, with its files
(a fenced block whose first line is ``# NAME``) written where they appear; its ``sh``
blocks (an install, long-running commands) are checked to name real commands and
options.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
FILE_NAME = re.compile(r"# ([\w.-]+)\n")


def blocks() -> list[tuple[str, str]]:
    """(language, text) of each fenced block of the tutorial, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(DOC.read_text())]


def tutorial_script() -> str:
    """The bash blocks as one script; files written by heredocs where they appear."""
    parts = ["set -euo pipefail"]
    for language, text in blocks():
        named = FILE_NAME.match(text)
        if language == "bash":
            for line in text.splitlines():
                # Each command echoed first, so the output says which one failed.
                parts += [f"echo {shlex.quote('$ ' + line)}", line]
        elif named and language in ("python", "yaml"):
            parts.append(f"cat > {named.group(1)} <<'WHIRR_DOC_EOF'\n{text}WHIRR_DOC_EOF")
    return "\n".join(parts) + "\n"


def environment(tmp_path: Path) -> dict[str, str]:
    """``whirr`` and ``python`` of this checkout first on PATH; no settings of the user's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Scripts, not links: a venv's python knows its venv by the path it was started as.
    for name, command in (("python", ""), ("whirr", " -m whirr.cli.main")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}"{command} "$@"\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHIRR_")}
    env.update(PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", HOME=str(tmp_path))
    return env


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "tutorial.sh"
    script.write_text(tutorial_script())
    done = subprocess.run(
        ["bash", str(script)], cwd=work, env=environment(tmp_path), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    out = done.stdout
    assert "Submitted job #1" in out
    assert "$ whirr logs 1\nepoch 0: loss 1.000\n" in out, out  # the job's output
    assert "queued 3 job(s) #2-#4" in out, out
    assert "Progress: 3/3 finished" in out, out
    assert "nothing to do" in out
    with open(work / "demo" / "sweep.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(float(row["config.lr"]) for row in rows) == [0.001, 0.01, 0.1]
    assert all(row["status"] == "completed" for row in rows)
    runs = work / "demo" / ".whirr" / "runs"
    assert (runs / "job-1" / "artifacts" / "model.txt").read_text() == "weights for lr=0.1\n"
    assert len(list(runs.glob("local-*"))) == 1  # the direct run


def test_the_commands_to_start_yourself_exist(tmp_path: Path) -> None:
    """Each ``whirr`` line of the sh blocks names a command, and its options are in that
    command's --help."""
    env = environment(tmp_path)
    checked = 0
    for language, text in blocks():
        if language != "sh":
            continue
        for line in text.splitlines():
            words = shlex.split(line, comments=True)
            if not words or words[0] != "whirr":
                continue
            helped = subprocess.run(
                ["whirr", words[1], "--help"], env=env, capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
            assert helped.returncode == 0, (line, helped.stderr)
            for option in (w for w in words[2:] if w.startswith("-")):
                assert re.search(rf"(^|[\s,]){re.escape(option)}\b", helped.stdout), (line, option)
            checked += 1
    assert checked >= 5
