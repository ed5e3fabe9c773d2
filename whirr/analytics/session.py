"""An analytics session: one whirr installation (a project or a server, through the
``Whirr`` facade) and an in-memory DuckDB connection with a private temporary directory.
Everything here only reads."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from whirr.analytics.errors import AnalyticsError
from whirr.analytics.schema import quote_str
from whirr.analytics.tables import RowsInfo, SegmentTable, register_runs, register_segments
from whirr.facade.protocol import Whirr
from whirr.projections import RunView
from whirr.wire import schemas


class Session:
    """Use as a context manager; ``con`` is the DuckDB connection. ``whirr`` is where the
    runs and their files come from (a filter over runs already read needs none); the
    caller opens and closes it."""

    def __init__(self, whirr: Whirr | None = None) -> None:
        import duckdb

        self._whirr = whirr
        self.tmpdir = Path(tempfile.mkdtemp(prefix="whirr-analytics-"))
        self.con = duckdb.connect(":memory:")
        # Timestamps print and compare in UTC whatever the machine's zone, like the files.
        self.con.execute("SET TimeZone = 'UTC'")
        # A sort too large for memory spills here, not into `.tmp` in the user's cwd.
        self.con.execute(f"SET temp_directory = {quote_str(str(self.tmpdir / 'spill'))}")

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def whirr(self) -> Whirr:
        """Where the runs and their files come from."""
        if self._whirr is None:
            raise AnalyticsError("this analytics session reads no project or server")
        return self._whirr

    def close(self) -> None:
        """Close the connection and remove the temporary directory."""
        self.con.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def lock(self) -> None:
        """From now on the connection reads only the files its views were built over
        (and its own temporary directory) and writes none; the settings cannot be changed
        back. For running a query a person wrote (``whirr sql``)."""
        readable = []
        for kind in ("metrics", "system"):
            import duckdb

            try:
                rows = self.con.execute(f"SELECT filename FROM _{kind}_files").fetchall()
            except duckdb.CatalogException:  # no such view built for this query
                continue
            readable += [name for (name,) in rows]
        paths = ", ".join(quote_str(p) for p in readable)
        self.con.execute(f"SET allowed_paths = [{paths}]")
        self.con.execute(f"SET allowed_directories = [{quote_str(str(self.tmpdir) + '/')}]")
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def runs_table(
        self, runs: Sequence[RunView] | Sequence[schemas.Run], name: str = "runs"
    ) -> RowsInfo:
        """Register ``runs`` as table ``name``."""
        return register_runs(self.con, self.tmpdir, runs, name)

    def segments(self, runs: Sequence[schemas.Run], kind: str = "metrics") -> SegmentTable:
        """Register the ``kind`` rows of ``runs`` as view ``_<kind>``."""
        return register_segments(self.con, self.whirr, runs, kind)

    def relation(self, sql: str) -> Any:
        """``sql`` as a lazy DuckDB relation (for handing on through Arrow); DuckDB's errors
        become ``AnalyticsError``."""
        import duckdb

        try:
            return self.con.sql(sql)
        except duckdb.Error as exc:
            raise AnalyticsError(str(exc).strip()) from None

    def execute(self, sql: str, params: list[Any] | None = None) -> Any:
        """Run ``sql``; DuckDB's errors become ``AnalyticsError`` with DuckDB's message."""
        import duckdb

        try:
            return self.con.execute(sql, params)
        except duckdb.Error as exc:
            raise AnalyticsError(str(exc).strip()) from None
