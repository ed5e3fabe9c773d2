"""``whirr token``: named API tokens with scopes, kept in the server's data dir."""

from __future__ import annotations

import time
from pathlib import Path

import click

from whirr.cli.common import emit_json, fail
from whirr.cli.server import DEFAULT_DATA_DIR

_DATA_DIR = click.option(
    "-d",
    "--data-dir",
    envvar="WHIRR_DATA_DIR",
    show_envvar=True,
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="The server's data dir (where tokens.json lives).",
)


def _root(data_dir: str) -> Path:
    return Path(data_dir).expanduser().resolve()


@click.group("token")
def token_cmd() -> None:
    """Create, list and revoke the server's named tokens.

    \b
    Run these on the server's machine, against its data dir (like `whirr server`):
    tokens.json there holds only hashes, names and scopes. A running server sees a
    change at its next request, without a restart. Scopes:
      read    every GET (runs, jobs, logs, workers, events)
      submit  read, plus queue, cancel, retry, priority, sweeps, ablations, tracked runs
      worker  read, plus register, claim and report jobs (for `whirr worker`)
      admin   everything, also pausing the queue and draining workers
    The server's own token (--token, WHIRR_TOKEN, DATA_DIR/token) keeps every scope.
    """


@token_cmd.command("create")
@click.argument("name")
@click.option(
    "-s",
    "--scope",
    "scopes",
    type=click.Choice(["read", "submit", "worker", "admin"]),
    multiple=True,
    required=True,
    help="What the token may do (repeat for several).",
)
@_DATA_DIR
def create_cmd(name: str, scopes: tuple[str, ...], data_dir: str) -> None:
    """Create a token NAME and print it (only this once).

    \b
    Examples:
      whirr token create alice --scope submit
      whirr token create gpu-box-1 --scope worker
    """
    from whirr.api.tokens import TokenStoreError, create_token

    try:
        token, entry = create_token(_root(data_dir), name, scopes)
    except TokenStoreError as exc:
        fail(str(exc))
        return
    click.echo(
        f"created token {entry.name!r} ({', '.join(entry.scopes)}); it is shown once:", err=True
    )
    click.echo(token)


@token_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--all", "show_all", is_flag=True, help="Include revoked tokens.")
@_DATA_DIR
def list_cmd(as_json: bool, show_all: bool, data_dir: str) -> None:
    """List the named tokens (names and scopes; tokens themselves are not stored)."""
    from whirr.api.tokens import TokenStoreError, read_entries

    try:
        entries = read_entries(_root(data_dir))
    except TokenStoreError as exc:
        fail(str(exc))
        return
    shown = [e for e in entries if show_all or e.revoked is None]
    if as_json:
        emit_json([e.public() for e in shown])
        return
    if not shown:
        click.echo("no tokens (create one with: whirr token create NAME --scope submit)")
        return
    for e in shown:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created))
        state = (
            " revoked " + time.strftime("%Y-%m-%d %H:%M", time.localtime(e.revoked))
            if e.revoked is not None
            else ""
        )
        click.echo(f"{e.name:<24} {','.join(e.scopes):<20} created {when}{state}")


@token_cmd.command("revoke")
@click.argument("name")
@_DATA_DIR
def revoke_cmd(name: str, data_dir: str) -> None:
    """Revoke the token NAME: the server refuses it from its next request on."""
    from whirr.api.tokens import TokenStoreError, revoke_token

    try:
        revoke_token(_root(data_dir), name)
    except TokenStoreError as exc:
        fail(str(exc))
        return
    click.echo(f"revoked token {name!r}")
