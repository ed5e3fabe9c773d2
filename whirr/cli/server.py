"""``whirr server``: the HTTP API for remote workers and clients."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from whirr.cli.common import Seconds, fail, user_errors
from whirr.services.errors import InvalidRequest

DEFAULT_DATA_DIR = "~/.whirr/server"


@click.command("server")
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="TCP port to listen on.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind; 0.0.0.0 serves every interface.",
)
@click.option(
    "--database-url",
    envvar="WHIRR_DATABASE_URL",
    show_envvar=True,
    help="postgresql://user:pass@host/db; default: SQLite under the data dir.",
)
@click.option(
    "-d",
    "--data-dir",
    envvar="WHIRR_DATA_DIR",
    show_envvar=True,
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Run files (shared with workers' --data-dir), the token, the SQLite log.",
)
@click.option(
    "--token",
    envvar="WHIRR_TOKEN",
    show_envvar=True,
    help="API token; default: the one stored in the data dir (created once).",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Serve without a token (refused unless --host is a loopback address).",
)
@click.option(
    "--public-url",
    metavar="URL",
    envvar="WHIRR_PUBLIC_URL",
    show_envvar=True,
    help="The URL browsers and clients use to reach this server (behind a proxy: "
    "https://whirr.example.com); requests naming another host are refused.",
)
@click.option(
    "--requeue-interval",
    type=Seconds(0.1, 3600),
    default=2.0,
    show_default=True,
    hidden=True,
    help="Seconds between lease-expiry sweeps.",
)
@click.option(
    "--worker-timeout",
    type=Seconds(1, 86400),
    default=120.0,
    show_default=True,
    help="Seconds of silence after which a worker is offline.",
)
@click.option(
    "--forget-workers-after",
    metavar="DURATION",
    envvar="WHIRR_FORGET_WORKERS_AFTER",
    show_envvar=True,
    default="7d",
    show_default=True,
    help="Leave workers not heard from for this long (12h, 7d, 30d; at least "
    "--worker-timeout) out of /workers, `whirr workers` and the status counts; "
    "?forgotten=true and --all still list them.",
)
@click.option(
    "--artifact-store",
    metavar="URL",
    envvar="WHIRR_ARTIFACT_STORE",
    show_envvar=True,
    help="Where uploaded artifacts go: s3://bucket/prefix (needs whirr[s3]; credentials "
    "from the AWS environment/config); default: DATA_DIR/runs/<run>/artifacts.",
)
@click.option(
    "--s3-endpoint-url",
    metavar="URL",
    help="S3-compatible server of --artifact-store (MinIO, Ceph...); default: AWS, or "
    "AWS_ENDPOINT_URL.",
)
@click.option(
    "--max-artifact-size",
    metavar="SIZE",
    default="20GiB",
    show_default=True,
    help="Largest artifact a worker may upload (bytes, or with KiB/MiB/GiB/TiB).",
)
@click.option(
    "--retention",
    metavar="DURATION",
    envvar="WHIRR_RETENTION",
    show_envvar=True,
    default=None,
    help="Archive liveness events older than this (7d, 30d) every hour, as `whirr log "
    "archive` does, into DATA_DIR/archive (a PostgreSQL log too); default: never.",
)
@click.option(
    "--retention-every",
    type=Seconds(0.1, 604800),
    default=3600.0,
    show_default=True,
    hidden=True,
    help="Seconds between two retention passes.",
)
@click.option(
    "--force-new-history",
    is_flag=True,
    help="The data dir's whirr.db is lost or damaged: move it aside (into DATA_DIR/lost-TIME/) "
    "and start an empty history; new job ids start above every runs/job-N. With "
    "--database-url: take that database's history as the server's (the data dir's old "
    "project-id is kept aside).",
)
@user_errors
def server_cmd(
    port: int,
    host: str,
    database_url: str | None,
    data_dir: str,
    token: str | None,
    no_auth: bool,
    public_url: str | None,
    requeue_interval: float,
    worker_timeout: float,
    forget_workers_after: str,
    artifact_store: str | None,
    s3_endpoint_url: str | None,
    max_artifact_size: str,
    retention: str | None,
    retention_every: float,
    force_new_history: bool,
) -> None:
    """Serve the HTTP API (/api/v1) for remote workers, clients and dashboards.

    \b
    Every route but /api/v1/health needs 'Authorization: Bearer <token>'. The token
    comes from --token/WHIRR_TOKEN, or is created on first start, stored (0600) in
    DATA_DIR/token and printed once. Give it to workers and clients as WHIRR_TOKEN,
    or give each of them a named token with only the scopes it needs (`whirr token`).
    A token file that is a symlink, another user's, or readable by others is refused
    (exit 2). DATA_DIR and what the server creates in it are owner-only (0700/0600).
    Web pages cannot use the API: JSON bodies must say 'Content-Type: application/json',
    and without a token only localhost names (and --public-url) are answered.

    \b
    Examples:
      whirr server                                  # loopback, SQLite in ~/.whirr/server
      whirr server --host 0.0.0.0 -d /srv/whirr \\
          --database-url postgresql://whirr:pw@db/whirr
      whirr server --no-auth                        # local experiments only
    Then, on each GPU machine (the data dir on a shared filesystem):
      WHIRR_TOKEN=... whirr worker --server http://head:8080 -d /srv/whirr --gpu 0
    """
    from whirr.api.auth import TokenFileError, is_loopback, load_or_create_token
    from whirr.filemodes import private_dir
    from whirr.store import open_store
    from whirr.web.config import ServerConfig
    from whirr.web.origin import host_allowed, normalize_public_url

    if no_auth and not is_loopback(host):
        raise click.UsageError(
            f"refusing --no-auth on {host}: anyone who can reach it could run commands. "
            "Bind to 127.0.0.1, or keep auth on."
        )
    if public_url:
        try:
            public_url = normalize_public_url(public_url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--public-url'") from None
        if no_auth and not host_allowed(public_url.split("://", 1)[1]):
            raise click.UsageError(
                f"refusing --no-auth with --public-url {public_url}: a server without a "
                "token serves this machine only. Keep auth on."
            )
    max_artifact_bytes = parse_size(max_artifact_size, "--max-artifact-size")
    forget_after_s = _forget_after(forget_workers_after, worker_timeout)
    retention_s: float | None = None
    if retention:
        from whirr.cli.scheduling import parse_duration

        retention_s = parse_duration(retention, "--retention")
    if artifact_store and artifact_store != "local":
        from whirr.services.artifact_store import parse_s3_url

        try:
            parse_s3_url(artifact_store)
        except InvalidRequest as exc:
            raise click.BadParameter(str(exc), param_hint="'--artifact-store'") from None
        if importlib.util.find_spec("boto3") is None:  # else the first upload would fail
            fail("--artifact-store needs boto3, which is not installed: pip install 'whirr[s3]'")
            return
    root = Path(data_dir).expanduser().resolve()
    try:
        private_dir(root)  # created 0700 (an existing one is kept as it is): docs/security.md
        private_dir(root / "runs")
    except OSError as exc:  # a file in the way, no permission, a read-only disk
        why = "exists and is not a folder" if isinstance(exc, FileExistsError) else exc.strerror
        fail(f"cannot use --data-dir {data_dir}: {exc.filename or root}: {why}")
        return
    if no_auth:
        token = None
    elif not token:
        try:
            token, created = load_or_create_token(root)
        except TokenFileError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        if created:
            click.echo(
                f"Created an API token (stored in {root / 'token'}, mode 0600; "
                "shown only this once):"
            )
            click.echo(f"  export WHIRR_TOKEN={token}")
        else:
            click.echo(f"Using the API token stored in {root / 'token'}")
    config = ServerConfig(
        data_dir=str(root),
        database_url=database_url or None,
        token=token,
        public_url=public_url or None,
        requeue_interval=requeue_interval,
        worker_timeout=worker_timeout,
        forget_workers_after=forget_after_s,
        artifact_store=artifact_store or None,
        s3_endpoint_url=s3_endpoint_url or None,
        max_artifact_size=max_artifact_bytes,
        retention=retention_s,
        retention_every=retention_every,
    )
    # The data dir knows its history as a project does (whirr.identity): a deleted,
    # emptied, replaced or cut whirr.db, or a PostgreSQL database that is not the one the
    # data dir's project-id names, is an error here, not a silent new history.
    from whirr.identity import DataDir, adopt_database, check_store, open_checked, start_new_history

    if database_url:
        place = DataDir(root, database_url)
        store = open_store(config.store_url)  # a bad URL or database fails here, clearly
        try:
            if force_new_history:
                aside = adopt_database(place, store)
                where = f"; the data dir's old project-id is in {aside}" if aside else ""
                click.echo(f"Took the database's history as this server's{where}")
            check_store(place, store)
        finally:
            store.close()
    else:
        place = DataDir(root)
        if force_new_history:
            aside = start_new_history(place)
            where = f"; the old database files are in {aside}" if aside else ""
            click.echo(f"Started a new, empty history in {root}{where}")
        open_checked(place).close()
    kind = "PostgreSQL" if database_url else f"SQLite ({root / 'whirr.db'})"
    auth = "off (loopback only)" if token is None else "bearer token"
    click.echo(f"whirr server on http://{host}:{port}/api/v1  store: {kind}  auth: {auth}")
    if public_url:
        click.echo(f"answering to {public_url} (and localhost names) only")
    if artifact_store and artifact_store != "local":
        click.echo(f"uploaded artifacts go to {artifact_store}")
    if retention_s is not None:
        click.echo(f"archiving liveness events older than {retention} ({root / 'archive'})")
    from whirr.api.app import serve

    try:
        serve(config, host, port)
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}")


def _forget_after(text: str, worker_timeout: float) -> float:
    """``--forget-workers-after`` in seconds: a duration no shorter than the worker
    timeout (else a worker still online would drop out of the listings)."""
    from whirr.cli.scheduling import parse_duration

    seconds = parse_duration(text, "--forget-workers-after")
    if seconds < worker_timeout:
        raise click.BadParameter(
            f"{text!r} is shorter than --worker-timeout ({worker_timeout:g}s): a worker "
            "still online would be left out",
            param_hint="'--forget-workers-after'",
        )
    return seconds


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MIB": 1 << 20}
_UNITS |= {"G": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TIB": 1 << 40}


def parse_size(text: str, option: str) -> int:
    """``20GiB``, ``512M``, ``1000`` -> bytes (a usage error for anything else)."""
    value = text.strip().upper()
    digits = value.rstrip("KMGTIB ")
    unit = value[len(digits) :].strip()
    if not digits.isdigit() or unit not in _UNITS or int(digits) * _UNITS[unit] < 1:
        raise click.BadParameter(f"{text!r} is not a size such as 20GiB", param_hint=option)
    return int(digits) * _UNITS[unit]
