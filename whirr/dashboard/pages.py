"""The HTML of the dashboard's pages: a small shell each, filled in by the page's script
from the JSON endpoints. Every value placed into HTML here goes through ``html.escape``;
the scripts build the rest with ``textContent``, never ``innerHTML``, so data cannot
become markup anywhere.
"""

from __future__ import annotations

from html import escape

from whirr.dashboard import assets

#: page name -> (title, nav label or None, needs plotly.js)
PAGES = {
    "overview": ("Overview", "Overview", False),
    "queue": ("Queue", "Queue", False),
    "runs": ("Runs", "Runs", False),
    "run": ("Run", None, True),
    "compare": ("Compare", "Compare", True),
}
NAV = [
    ("overview", "/", "g o"),
    ("queue", "/queue", "g q"),
    ("runs", "/runs", "g r"),
    ("compare", "/compare", "g c"),
]
#: Scripts every page loads, in order, after ``early.js``; ``preview.js`` (on pages that
#: draw charts) and the page's own script come after them. plotly.js is not among them:
#: ``charts.js`` loads it once the page has drawn its first charts.
CORE_SCRIPTS = ("core.js", "charts.js")
PAGE_SCRIPTS = {
    "overview": "lists.js",
    "queue": "lists.js",
    "runs": "runs.js",
    "run": "run.js",
    "compare": "compare.js",
}
LOADING = '<div class="loading" aria-busy="true">Loading…</div>'
SHORTCUTS = [
    ("/", "Search (runs page) or filter"),
    ("g o", "Overview"),
    ("g q", "Queue"),
    ("g r", "Runs"),
    ("g c", "Compare"),
    ("t", "Switch dark / light theme"),
    ("c", "Compare the selected runs"),
    ("x", "Select the focused run"),
    ("j / k", "Next / previous row"),
    ("Enter", "Open the focused row"),
    ("?", "This help"),
    ("Esc", "Leave the search box, close this help"),
]


def page(
    name: str,
    *,
    csrf: str,
    head: int,
    label: str,
    kind: str,
    signed_in: bool,
    auth: bool,
    subject: str = "",
    title: str | None = None,
    first: str = "",
) -> str:
    """The HTML of page ``name``; ``subject`` is the run id on a run's page. ``first``:
    the page's first view rendered on the server (``first_view``; safe HTML), shown until
    the page's script draws it live; without it the page says it is loading."""
    heading, _, plotly = PAGES[name]
    v = assets.version()
    current = ' aria-current="page"'
    nav = "".join(
        f'<a href="{href}"{current if key == name else ""} '
        f'data-key="{escape(keys)}">{escape(PAGES[key][1] or "")}</a>'
        for key, href, keys in NAV
    )
    # early.js first: it starts the page's first requests at once. plotly.js is not a
    # script of the page: charts.js fetches and compiles it (data-plotly) once the charts
    # are drawn as previews.
    chart_scripts = ("preview.js",) if plotly else ()
    scripts = [
        f'<script src="/static/{script}?v={v}"></script>'
        for script in ("early.js", *CORE_SCRIPTS, *chart_scripts, PAGE_SCRIPTS[name])
    ]
    plotly_url = f"/static/{assets.PLOTLY}?v={v}" if plotly else ""
    logout = ""
    if auth and signed_in:
        logout = (
            '<form method="post" action="/logout" class="logout" id="logout-form">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            '<button type="submit" class="ghost">Sign out</button></form>'
        )
    help_rows = "".join(
        f"<tr><td><kbd>{escape(k)}</kbd></td><td>{escape(d)}</td></tr>" for k, d in SHORTCUTS
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{escape(csrf)}">
<title>{escape(title or heading)} · whirr</title>
<link rel="icon" href="/static/favicon.svg?v={v}" type="image/svg+xml">
<link rel="stylesheet" href="/static/dashboard.css?v={v}">
<script src="/static/theme.js?v={v}"></script>
</head>
<body data-page="{escape(name)}" data-head="{int(head)}" data-subject="{escape(subject)}"
      data-kind="{escape(kind)}" data-plotly="{plotly_url}">
<a class="skip" href="#main">Skip to content</a>
<header class="topbar">
  <a class="brand" href="/" aria-label="whirr home"
     ><span class="logo" aria-hidden="true"></span>whirr</a>
  <nav aria-label="Pages">{nav}</nav>
  <div class="topbar-right">
    <span class="source" title="What this dashboard shows">{escape(label)}</span>
    <span id="live" class="live" data-state="connecting" role="status"
          title="Live updates">connecting</span>
    <button id="theme-toggle" class="icon" type="button" title="Switch theme (t)"
            aria-label="Switch dark / light theme"></button>
    <button id="help-toggle" class="icon" type="button" title="Keyboard shortcuts (?)"
            aria-label="Keyboard shortcuts">?</button>
    {logout}
  </div>
</header>
<main id="main" tabindex="-1">{first or LOADING}</main>
<div id="toast" class="toast" role="status" aria-live="polite"></div>
<dialog id="help"><h2>Keyboard shortcuts</h2><table>{help_rows}</table>
<form method="dialog"><button>Close</button></form></dialog>
{"".join(scripts)}
</body>
</html>
"""


def login_page(*, next_path: str, error: str | None) -> str:
    """The sign-in form (the server's token, stored as a session cookie)."""
    v = assets.version()
    message = f'<p class="form-error" role="alert">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · whirr</title>
<link rel="icon" href="/static/favicon.svg?v={v}" type="image/svg+xml">
<link rel="stylesheet" href="/static/dashboard.css?v={v}">
<script src="/static/theme.js?v={v}"></script>
</head>
<body class="login-body">
<main class="login-card">
  <h1><span class="logo" aria-hidden="true"></span>whirr</h1>
  <p>This server needs its API token. It was printed when <code>whirr server</code> first
  started and is stored in <code>DATA_DIR/token</code>.</p>
  {message}
  <form method="post" action="/login">
    <input type="hidden" name="next" value="{escape(next_path)}">
    <label for="token">Token</label>
    <input id="token" name="token" type="password" autocomplete="current-password"
           required autofocus>
    <button type="submit" class="primary">Sign in</button>
  </form>
</main>
</body>
</html>
"""


def error_page(status: int, message: str) -> str:
    """A plain page for a page that cannot be shown (unknown run, bad link)."""
    v = assets.version()
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{status} · whirr</title>
<link rel="stylesheet" href="/static/dashboard.css?v={v}">
<script src="/static/theme.js?v={v}"></script>
</head>
<body class="login-body">
<main class="login-card">
  <h1>{status}</h1>
  <p>{escape(message)}</p>
  <p><a href="/">Back to the overview</a></p>
</main>
</body>
</html>
"""
