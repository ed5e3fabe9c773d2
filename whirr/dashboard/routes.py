"""The dashboard's route table (a sanic Blueprint): pages, sign-in, static files, the JSON
endpoints of ``views`` and the live stream; plus the guards every request passes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote

import msgspec
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import redirect

from whirr.dashboard import assets, first_view, pages, views
from whirr.dashboard.security import (
    Settings,
    check_csrf,
    check_host,
    check_same_origin,
    cleared_cookie,
    require_login,
    safe_next,
    session_cookie,
)
from whirr.services import run_files as files
from whirr.services.errors import WhirrError
from whirr.web.http import Forbidden, query_int, query_str

#: Paths anyone may load: the sign-in page and the files it needs.
PUBLIC_PREFIXES = ("/login", "/static/")
KEEPALIVE = 15.0
#: How often the stream looks for new metric rows of the runs a page watches.
METRICS_POLL = 1.0
MAX_WATCHED = 20
#: Seconds a page waits for its server-rendered first view before it is sent without.
FIRST_VIEW_WAIT = 0.8
_json = msgspec.json.Encoder()
SECURITY_HEADERS = {
    # plotly.js sets inline styles on its SVG, so styles may be inline; scripts may not.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    # Not "no-referrer": under it a browser sends ``Origin: null`` on the page's own form
    # posts (sign-in, sign-out), which the same-origin check must refuse. "same-origin"
    # keeps the referrer (run ids, queries) from other sites and lets Origin through.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def settings_of(request: Request) -> Settings:
    """The dashboard's guard settings."""
    value: Settings = request.app.ctx.dashboard_settings
    return value


def _is_page(request: Request) -> bool:
    return not request.path.startswith(("/ui/", "/static/"))


async def guard(request: Request) -> HTTPResponse | None:
    """Host check, sign-in, CSRF on POSTs; pages redirect to sign-in instead of a 401."""
    settings = settings_of(request)
    if settings.check_host or settings.public_url is not None:
        check_host(request, settings.public_url)
    if not request.path.startswith(PUBLIC_PREFIXES) and not settings.signed_in(request):
        if _is_page(request) and request.method == "GET":
            target = request.path + (f"?{request.query_string}" if request.query_string else "")
            return redirect(f"/login?next={quote(target, safe='')}")
        require_login(request, settings)
    if request.method == "POST" and request.path not in ("/login", "/logout"):
        check_csrf(request, settings)
    return None


async def add_headers(request: Request, response: HTTPResponse) -> None:
    """Security headers on every dashboard answer."""
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)


def _render(
    request: Request,
    name: str,
    subject: str = "",
    title: str | None = None,
    head: int = 0,
    first: str = "",
) -> HTTPResponse:
    settings = settings_of(request)
    source = views.source_of(request)
    body = pages.page(
        name,
        csrf=settings.csrf_token(request),
        head=head,
        label=source.label,
        kind=source.kind,
        signed_in=settings.signed_in(request),
        auth=settings.token is not None,
        subject=subject,
        title=title,
        first=first,
    )
    headers = {"Cache-Control": "no-store"}
    if name == "compare":
        # plotly's parallel coordinates draw with regl, which compiles its WebGL commands
        # with new Function(): that page alone may evaluate code. Data still never becomes
        # markup (the scripts build the DOM with textContent), so this opens no path for it.
        headers["Content-Security-Policy"] = SECURITY_HEADERS["Content-Security-Policy"].replace(
            "script-src 'self'", "script-src 'self' 'unsafe-eval'"
        )
    return HTTPResponse(body, content_type="text/html; charset=utf-8", headers=headers)


def _page(name: str) -> Callable[[Request], Awaitable[HTTPResponse]]:
    async def handler(request: Request) -> HTTPResponse:
        source = views.source_of(request)
        head = await source.head()
        return _render(request, name, head=head, first=await _first_view(request, name))

    handler.__name__ = f"page_{name}"
    return handler


async def _first_view(request: Request, name: str) -> str:
    """The page's first view rendered here (queue, compare), so it is useful before its
    script runs; other pages draw theirs with their script."""
    source = views.source_of(request)
    if name == "queue":
        return first_view.queue(await views.queue_data(source, 200))
    if name == "compare":
        try:
            ids = views.run_ids(request)
        except WhirrError:  # a bad address: the script says what is wrong with it
            return ""
        metric = query_str(request, "metric", 1000)
        x = query_str(request, "x") or "step"
        try:
            # A run never looked at before may take a second or more to parse (millions
            # of rows): then the page comes at once, saying it is loading, and its script
            # draws it (the parse goes on meanwhile, for the script's request).
            return await asyncio.wait_for(
                first_view.compare(source, ids, metric, x), FIRST_VIEW_WAIT
            )
        except TimeoutError:
            return ""
    return ""


async def run_page(request: Request, run_id: str) -> HTTPResponse:
    """A run's page (an unknown id gets a 404 page, not an empty shell)."""
    source = views.source_of(request)
    try:
        run = await source.run(run_id)
    except WhirrError as exc:
        return HTTPResponse(
            pages.error_page(exc.status, str(exc)),
            status=exc.status,
            content_type="text/html; charset=utf-8",
        )
    # Start reading the run's metrics now: a long file then parses while the browser is
    # still loading the page's scripts, and the chart's request finds it (nearly) ready.
    source.prefetch(run.id)
    return _render(
        request, "run", subject=run.id, title=run.name or run.id, head=await source.head()
    )


async def login_form(request: Request) -> HTTPResponse:
    """The sign-in page (or straight on when auth is off or already signed in)."""
    settings = settings_of(request)
    target = safe_next(request.args.get("next"))
    if settings.token is None or settings.signed_in(request):
        return redirect(target)
    return HTTPResponse(
        pages.login_page(next_path=target, error=None), content_type="text/html; charset=utf-8"
    )


async def login_submit(request: Request) -> HTTPResponse:
    """Check the token; on success set the session cookie and go where the user was."""
    settings = settings_of(request)
    check_same_origin(request, settings.public_url)
    form = parse_qs(request.body.decode("utf-8", "replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0]
    target = safe_next((form.get("next") or ["/"])[0])
    if settings.token is None:
        return redirect(target, status=303)
    if not settings.check_token(token):
        # Slow down guessing a little; the token itself is 256 bits.
        await asyncio.sleep(0.5)
        return HTTPResponse(
            pages.login_page(next_path=target, error="That is not the token."),
            status=401,
            content_type="text/html; charset=utf-8",
        )
    response = redirect(target, status=303)
    response.headers["Set-Cookie"] = session_cookie(settings, settings.secure_cookie(request))
    return response


async def logout(request: Request) -> HTTPResponse:
    """Forget the session cookie (a form POST carrying the CSRF token)."""
    settings = settings_of(request)
    check_same_origin(request, settings.public_url)
    form = parse_qs(request.body.decode("utf-8", "replace"), max_num_fields=10)
    if not settings.csrf_matches(request, (form.get("csrf") or [""])[0]):
        raise Forbidden("stale sign-out form: reload the page")
    response = redirect("/login", status=303)
    response.headers["Set-Cookie"] = cleared_cookie()
    return response


async def static(request: Request, name: str) -> HTTPResponse:
    """A shipped static file, or plotly.js from the plotly package."""
    asset = await asyncio.get_running_loop().run_in_executor(None, assets.load, name)
    return assets.respond_asset(request, asset)


async def stream(request: Request) -> None:
    """Server-sent events for open pages: ``change`` for each batch of new events in the
    log, ``metrics``/``system`` when a watched run's files grew. Pages refetch what they
    show; when the stream drops they fall back to polling (see core.js)."""
    src = views.source_of(request)
    after = query_int(request, "after", 0, 0, 2**62) or 0
    last_id = request.headers.get("last-event-id", "")
    if last_id.isdigit() and len(last_id) < 19:
        after = max(after, int(last_id))
    watched = [
        files.check_run_id(r) for r in (query_str(request, "runs", 5000) or "").split(",") if r
    ][:MAX_WATCHED]
    rows = {}
    for run_id in watched:
        for kind in ("metrics", "system"):
            rows[(run_id, kind)] = (await src.columns(run_id, kind)).rows
    response = await request.respond(
        content_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    await response.send(f"retry: 2000\n\nevent: hello\ndata: {after}\n\n")
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    while not _closing(request):
        changes = await src.changes(after, METRICS_POLL if watched else KEEPALIVE)
        out = []
        if changes:
            after = changes[-1].position
            data = _json.encode([[c.position, c.type, c.stream] for c in changes]).decode()
            out.append(f"id: {after}\nevent: change\ndata: {data}\n\n")
        for (run_id, kind), seen in rows.items():
            now = (await src.columns(run_id, kind)).rows
            if now > seen:
                rows[(run_id, kind)] = now
                out.append(
                    f"event: {kind}\ndata: "
                    f"{_json.encode({'run': run_id, 'rows': now}).decode()}\n\n"
                )
        if out:
            await response.send("".join(out))
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= KEEPALIVE:
            await response.send(": keepalive\n\n")
            quiet_since = loop.time()
    await response.eof()


def _closing(request: Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def blueprint() -> Blueprint:
    """Every dashboard route, guarded."""
    bp = Blueprint("whirr_dashboard")
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/", _page("overview")),
        ("GET", "/queue", _page("queue")),
        ("GET", "/runs", _page("runs")),
        ("GET", "/compare", _page("compare")),
        ("GET", "/runs/<run_id:str>", run_page),
        ("GET", "/login", login_form),
        ("POST", "/login", login_submit),
        ("POST", "/logout", logout),
        ("GET", "/static/<name:path>", static),
        ("GET", "/ui/overview", views.overview),
        ("GET", "/ui/queue", views.queue),
        ("GET", "/ui/runs", views.runs_table),
        ("GET", "/ui/runs/<run_id:str>", views.run_detail),
        ("GET", "/ui/runs/<run_id:str>/series", views.run_series),
        ("GET", "/ui/runs/<run_id:str>/log", views.run_log),
        ("GET", "/ui/runs/<run_id:str>/artifacts/<path:path>", views.run_artifact),
        ("GET", "/ui/compare", views.compare),
        ("GET", "/ui/compare/series", views.compare_series),
        ("GET", "/ui/stream", stream),
        ("POST", "/ui/runs/<run_id:str>/rename", views.rename_run),
        ("POST", "/ui/runs/<run_id:str>/tags", views.tag_run),
        ("POST", "/ui/runs/<run_id:str>/note", views.note_run),
        ("POST", "/ui/runs/<run_id:str>/archive", views.archive_run),
        ("POST", "/ui/runs/<run_id:str>/unarchive", views.unarchive_run),
        ("POST", "/ui/runs/<run_id:str>/delete", views.delete_run),
        ("POST", "/ui/jobs/<job_id:int>/cancel", views.cancel_job),
        ("POST", "/ui/jobs/<job_id:int>/retry", views.retry_job),
    ]
    for method, path, handler in routes:
        name = f"{handler.__name__}_{method.lower()}"
        bp.add_route(handler, path, methods=[method], name=name, strict_slashes=False)
    bp.on_request(guard)
    bp.on_response(add_headers)
    return bp
