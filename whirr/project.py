"""Finding and creating a project: the nearest ``.whirr/`` walking up from the cwd."""

from __future__ import annotations

import os
from pathlib import Path

from whirr.config import DEFAULT_CONFIG_TEXT, Config, load_config
from whirr.filemodes import open_private, private_dir

WHIRR_DIR = ".whirr"


class ProjectNotFound(Exception):
    """No ``.whirr/`` above the starting directory."""


class Project:
    """A project rooted at ``root`` (the directory holding ``.whirr/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / WHIRR_DIR
        self.db_path = self.dir / "whirr.db"
        self.runs_dir = self.dir / "runs"
        self.config_path = self.dir / "config.yaml"
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        """The validated settings (read once)."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store_url(self) -> str:
        """The URL of the project's event store."""
        return f"sqlite://{self.db_path}"

    def open_store(self):
        """Open the project's SQLite store, checked to hold this project's history
        (``whirr.identity``: a lost, emptied or replaced database is an error)."""
        from whirr.identity import check_files, check_store
        from whirr.store.sqlite import SQLiteStore

        check_files(self)  # before SQLite could create or reset anything
        store = SQLiteStore(str(self.db_path))
        try:
            check_store(self, store)
        except BaseException:
            store.close()
            raise
        return store

    def run_dir(self, run_id: str) -> Path:
        """Where a run's files live."""
        return self.runs_dir / run_id


def find_project(start: Path | None = None) -> Project:
    """The project containing ``start`` (default: the cwd). ``~/.whirr`` never counts."""
    here = (start or Path.cwd()).resolve()
    home = Path.home().resolve()
    for candidate in (here, *here.parents):
        if candidate == home:
            continue  # ~/.whirr holds user settings, never a project
        if (candidate / WHIRR_DIR).is_dir():
            return Project(candidate)
    raise ProjectNotFound(
        f"no whirr project here ({here}); run `whirr init` first or cd into a project"
    )


def init_project(path: Path) -> tuple[Project, bool]:
    """Create ``path/.whirr/{config.yaml, whirr.db, runs/}``; returns (project, created).

    ``.whirr/`` and what is created in it are the owner's only (0700/0600, see
    ``whirr.filemodes``): the database holds every job's environment."""
    project = Project(path.resolve())
    created = not project.dir.exists()
    project.root.mkdir(parents=True, exist_ok=True)  # the user's folder: their umask
    private_dir(project.dir)
    private_dir(project.runs_dir)
    if not project.config_path.exists():
        fd = open_private(project.config_path, os.O_WRONLY | os.O_EXCL)
        with os.fdopen(fd, "w") as fh:
            fh.write(DEFAULT_CONFIG_TEXT)
    project.open_store().close()
    return project, created
