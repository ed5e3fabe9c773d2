"""``whirr import``: runs of MLflow, TensorBoard and W&B brought into a whirr project.

Readers (``mlflow``, ``tensorboard``, ``wandb``) read a source and yield
``model.ImportedRun``s, touching nothing; ``writer.Importer`` writes each as a run of the
project. See docs/import.md for what maps to what.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from whirr.importers.model import ImportedRun, SourceError

__all__ = ["SOURCES", "ImportedRun", "SourceError", "read_source"]

#: The sources ``whirr import`` knows, with what their argument names.
SOURCES = {
    "mlflow": "an MLflow store: file:PATH or an mlruns directory, or sqlite:///PATH.db",
    "tensorboard": "a TensorBoard log directory (each folder of event files is a run)",
    "wandb": "a W&B directory of offline runs (wandb/ or one offline-run-* folder)",
}


def read_source(source: str, location: str) -> Iterator[ImportedRun]:
    """The runs of ``location``, read as ``source`` (``SourceError`` when it cannot be)."""
    readers: dict[str, Callable[[], Iterator[ImportedRun]]] = {
        "mlflow": lambda: _mlflow(location),
        "tensorboard": lambda: _tensorboard(Path(location)),
        "wandb": lambda: _wandb(Path(location)),
    }
    return readers[source]()


def _mlflow(location: str) -> Iterator[ImportedRun]:
    from whirr.importers import mlflow

    return mlflow.read(location)


def _tensorboard(location: Path) -> Iterator[ImportedRun]:
    from whirr.importers import tensorboard

    return tensorboard.read(location)


def _wandb(location: Path) -> Iterator[ImportedRun]:
    from whirr.importers import wandb

    return wandb.read(location)
