"""``whirr artifacts list RUN`` and ``whirr artifacts get RUN NAME``: a run's saved files,
from the local project or a server (where they may have been uploaded by a worker on
another machine, and kept in the server's data dir or its S3 artifact store)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import click

from whirr.cli.common import emit_json, fail, print_table, server_option, user_errors
from whirr.facade import open_whirr


@click.group("artifacts")
def artifacts_cmd() -> None:
    """List and download a run's artifacts (what run.save_artifact() saved).

    \b
    Examples:
      whirr artifacts list job-12
      whirr artifacts get job-12 model.pt               # into ./model.pt
      whirr artifacts get 12 ckpt/last.pt -o /data/     # into /data/last.pt
      whirr artifacts get job-12 model.pt --server http://head:8080
    """


@artifacts_cmd.command("list")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print {artifacts: [...]} as JSON.")
@server_option()
@user_errors
def list_cmd(run_id: str, as_json: bool, server: str | None) -> None:
    """List the artifacts of run RUN_ID (an id, a unique prefix, or its job: 12, job-12),
    with their sizes and, when recorded, their sha256."""
    with open_whirr(server) as whirr:
        run = whirr.run(run_id)
        files = whirr.artifacts(run.id)
    recorded = {a.path: a for a in run.artifacts}
    rows: list[dict[str, Any]] = []
    for f in files:
        saved = recorded.get(f.path)
        rows.append(
            {
                "path": f.path,
                "size": f.size,
                "modified": f.modified,
                "sha256": saved.sha256 if saved is not None else None,
            }
        )
    if as_json:
        emit_json({"run_id": run.id, "artifacts": rows, "count": len(rows)})
        return
    if not rows:
        click.echo(f"Run {run.id} has no artifacts.")
        return
    print_table(
        ["PATH", "SIZE", "SHA256"],
        [[r["path"], str(r["size"]), (r["sha256"] or "-")[:16]] for r in rows],
    )


@artifacts_cmd.command("get")
@click.argument("run_id")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    "dest",
    metavar="DEST",
    help="Save as this file, or into this directory (default: ./NAME's last part). "
    "An existing file is replaced; anything else (a link, a device) is refused.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was saved as JSON.")
@server_option()
@user_errors
def get_cmd(run_id: str, name: str, dest: str | None, as_json: bool, server: str | None) -> None:
    """Download artifact NAME of run RUN_ID, streamed; its sha256 is checked when the run
    recorded one (artifacts uploaded by remote workers), and nothing is saved when it
    differs."""
    target = _target(Path(dest) if dest else Path.cwd(), name)
    with open_whirr(server) as whirr:
        run = whirr.run(run_id)
        saved = whirr.download_artifact(run.id, name, target)
    if as_json:
        emit_json(saved)
        return
    check = "sha256 verified" if saved.verified else f"sha256 {saved.sha256}"
    click.echo(f"Saved {name} of run {run.id} to {saved.dest} ({saved.size} bytes, {check})")


def _target(dest: Path, name: str) -> Path:
    """The file to write: ``dest`` itself, or ``dest/<last part of name>`` for a
    directory; refused when it exists as anything but a regular file."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    if not base or base in (".", ".."):
        fail(f"not an artifact name: {name!r}")
    try:
        info = os.lstat(dest)
    except FileNotFoundError:
        if not dest.parent.is_dir():
            fail(f"no directory {dest.parent} to save {dest.name} in")
        return dest
    if stat.S_ISDIR(info.st_mode):
        dest = dest / base
        try:
            info = os.lstat(dest)
        except FileNotFoundError:
            return dest
    if not stat.S_ISREG(info.st_mode):
        fail(f"refusing to replace {dest}: it is not a regular file")
    return dest
