"""The security suite (issue 22): every attack found by red-teaming the server, each run
as an attacker would (a hostile job on a real worker, a page's requests, crafted bodies,
stale reports, other local users' view of the files), and the OpenAPI fuzz (0 5xx).

Kept beside the code they need rather than here: the dashboard's browser attacks (sign-in,
markup in chart names: tests/dashboard/test_browser_server.py) and the workers' failures
(a 503 spell, a PostgreSQL crash-restart: tests/e2e/test_worker_hiccups.py).
"""
