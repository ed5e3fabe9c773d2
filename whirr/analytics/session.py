"""An analytics session: one project, its store, and an in-memory DuckDB connection with
a private temporary directory. Everything here only reads the project."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from whirr.analytics.errors import AnalyticsError
from whirr.analytics.schema import quote_str
from whirr.analytics.tables import RowsInfo, SegmentTable, register_runs, register_segments
from whirr.project import Project
from whirr.projections import RunView


class Session:
    """Use as a context manager; ``con`` is the DuckDB connection. The project's store is
    opened on first use (a filter over runs already read needs none)."""

    def __init__(self, project: Project | None = None, store: Any | None = None) -> None:
        import duckdb

        self._project = project
        self._store = store
        self._own_store = False
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
    def project(self) -> Project:
        """The project (found from the cwd when none was given)."""
        if self._project is None:
            from whirr.project import find_project

            self._project = find_project()
        return self._project

    @property
    def store(self) -> Any:
        """The project's store, opened on first use."""
        if self._store is None:
            self._store = self.project.open_store()
            self._own_store = True
        return self._store

    def close(self) -> None:
        """Close the connection and the store (when this session opened it)."""
        self.con.close()
        if self._own_store and self._store is not None:
            self._store.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def runs_table(self, runs: list[RunView], name: str = "runs") -> RowsInfo:
        """Register ``runs`` as table ``name``."""
        return register_runs(self.con, self.tmpdir, runs, name)

    def segments(self, runs: list[RunView], kind: str = "metrics") -> SegmentTable:
        """Register the ``kind`` rows of ``runs`` as view ``_<kind>``."""
        return register_segments(self.con, self.project.dir, self.project.runs_dir, runs, kind)

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
