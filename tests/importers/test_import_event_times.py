"""A run recorded after the fact keeps its own times: ``run.started``'s ``started_at`` and
``run.finished``'s ``finished_at`` win over when the events were recorded; without them
(every run whirr sees begin), the envelope's time, as before."""

from __future__ import annotations

from datetime import UTC, datetime

from whirr.events import Recorded, RunFinished, RunStarted, decode, encode
from whirr.projections.runs import apply

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
THEN = datetime(2021, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
LATER = datetime(2021, 3, 4, 6, 0, tzinfo=UTC)


def _fold(*events: object) -> object:
    view = None
    for position, event in enumerate(events, 1):
        view = apply(view, Recorded(position, NOW, "run-r", event))  # type: ignore[arg-type]
    return view


def test_imported_times_win_over_the_recording_time() -> None:
    view = _fold(
        RunStarted(run_id="r", run_dir="/d", started_at=THEN, source="mlflow:abc"),
        RunFinished(run_id="r", status="completed", finished_at=LATER),
    )
    assert view.started_at == THEN  # type: ignore[attr-defined]
    assert view.finished_at == LATER  # type: ignore[attr-defined]
    assert view.duration_seconds == (LATER - THEN).total_seconds()  # type: ignore[attr-defined]


def test_without_them_the_envelope_time_is_used() -> None:
    view = _fold(RunStarted(run_id="r", run_dir="/d"), RunFinished(run_id="r", status="failed"))
    assert view.started_at == NOW == view.finished_at  # type: ignore[attr-defined]


def test_the_new_fields_round_trip_through_the_codec() -> None:
    event = RunStarted(run_id="r", run_dir="/d", started_at=THEN, source="wandb:p/x")
    assert decode(encode(event)) == event
    end = RunFinished(run_id="r", status="crashed", finished_at=LATER)
    assert decode(encode(end)) == end
