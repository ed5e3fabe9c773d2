"""``whirr logs``: print a job's output.log, optionally following it until the job ends."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from whirr.cli import remote
from whirr.cli.common import project_store, user_errors
from whirr.cli.remote import server_option

CHUNK = 1 << 16


@click.command("logs")
@click.argument("job_id", type=int)
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new output; stop when the job ends."
)
@click.option(
    "-n",
    "--tail",
    "tail",
    type=click.IntRange(min=0),
    default=None,
    help="Start with only the last N lines.",
)
@server_option()
@user_errors
def logs_cmd(job_id: int, follow: bool, tail: int | None, server: str | None) -> None:
    """Print the output (stdout and stderr) of job JOB_ID.

    \b
    Examples:
      whirr logs 42
      whirr logs 42 -f        # follow until the job finishes
      whirr logs 42 -n 20 -f
    """
    if server:
        return remote.logs(server, job_id, follow=follow, tail=tail)
    from whirr.services import Jobs

    with project_store() as (project, store):
        job = Jobs(store).get(job_id)
        path = project.run_dir(job.run_id) / "output.log"
        if not follow:
            if not path.exists():
                click.echo(f"No output yet for job #{job_id} ({job.status}).", err=True)
                return
            _copy(path, 0, tail)
            return
        _follow(store, job_id, path, tail)


def _copy(path: Path, offset: int, tail: int | None = None) -> int:
    """Write ``path`` from ``offset`` to stdout; returns the new offset."""
    out = sys.stdout.buffer
    with open(path, "rb") as fh:
        if tail is not None:
            data = fh.read()
            lines = data.splitlines(keepends=True)
            out.write(b"".join(lines[-tail:] if tail else []))
            out.flush()
            return len(data)
        fh.seek(offset)
        while chunk := fh.read(CHUNK):
            out.write(chunk)
            offset += len(chunk)
    out.flush()
    return offset


def _follow(store: object, job_id: int, path: Path, tail: int | None) -> None:
    import watchfiles

    offset = 0
    first = True
    db_dir = str(Path(store.path).parent)  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    # One watcher for the whole follow, so no change between two reads is missed: the
    # output file's directory (new output) and the database's (the job's status).
    changes = watchfiles.watch(
        str(path.parent),
        db_dir,
        debounce=200,
        step=20,
        rust_timeout=1000,
        yield_on_timeout=True,
        recursive=False,
    )
    try:
        while True:
            job = store.job(job_id)  # type: ignore[attr-defined]
            if path.exists():
                offset = _copy(path, offset, tail if first else None)
                first = False
            if job is None or job.status not in ("queued", "running"):
                if path.exists():
                    _copy(path, offset)
                click.echo(f"[whirr] job #{job_id} {job.status if job else 'gone'}", err=True)
                return
            next(changes)
    except KeyboardInterrupt:
        pass
    finally:
        changes.close()
