"""What whirr's two sanic edges share: the API server (``whirr.api``) and the dashboard
(``whirr.dashboard``, standalone or mounted in the server).

The async bridge to the synchronous core (``backend``: thread pools, the head watcher,
the server's ``StoreWhirr``), the server's settings (``config``), request parsing and
error answers (``http``), Host/Origin checks (``origin``), file downloads (``download``)
and ending long requests at shutdown (``stopping``). Nothing here serves a route.
"""
