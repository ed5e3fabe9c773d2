"""``whirr dashboard``: the web UI over the local project or a whirr server."""

from __future__ import annotations

import secrets
from typing import Any

import click

from whirr.cli.common import fail, server_option, user_errors


@click.command("dashboard")
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=8265,
    show_default=True,
    help="TCP port to listen on.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind. Anything but loopback needs a sign-in token.",
)
@server_option()
@click.option(
    "--token",
    envvar="WHIRR_DASHBOARD_TOKEN",
    show_envvar=True,
    default=None,
    help="Sign-in token for the dashboard itself (created and printed when "
    "--host is not loopback). A server's API token comes from WHIRR_TOKEN.",
)
@user_errors
def dashboard_cmd(port: int, host: str, server: str | None, token: str | None) -> None:
    """Open the web dashboard: queue, runs, live charts, comparisons.

    \b
    Without --server it shows the project around the current directory, reading its
    database and run files directly (it writes only when you cancel or retry a job,
    or rename, tag, annotate, archive or delete a run).
    With --server it shows a whirr server through its HTTP API, using WHIRR_TOKEN.
    A `whirr server` also serves the dashboard itself at its own address.

    \b
    Examples:
      whirr dashboard                          # http://127.0.0.1:8265
      whirr dashboard -p 9000
      WHIRR_TOKEN=... whirr dashboard -s http://head:8080
      whirr dashboard --host 0.0.0.0           # prints a sign-in token

    \b
    Keyboard: / search, g o/q/r/c go to a page, t theme, ? all shortcuts.
    """
    try:
        from whirr.api.auth import is_loopback
        from whirr.dashboard.app import create_app
        from whirr.dashboard.security import Settings
    except ImportError as exc:
        fail(f"the dashboard needs its extra: pip install 'whirr[dashboard]' ({exc})")
        return
    loopback = is_loopback(host)
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
        click.echo(
            f"Serving on {host}, so the dashboard asks for this sign-in token "
            "(set WHIRR_DASHBOARD_TOKEN to choose your own):"
        )
        click.echo(f"  {token}")
    settings = Settings(token=token or None, check_host=token is None)
    from whirr.facade import open_whirr

    with open_whirr(server) as whirr:
        # A missing or broken database, an unreachable server or a wrong token fails
        # here, clearly, not on the first page.
        whirr.status()
        app = create_app(whirr, settings)
        _serve(app, whirr.label, host, port)


def _serve(app: Any, what: str, host: str, port: int) -> None:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    click.echo(f"whirr dashboard for {what}: http://{shown}:{port}/")
    from whirr.dashboard.app import serve

    try:
        serve(app, host, port)
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}")
