"""The poison part of the store contract (issue 18): nothing invalid is appended, and a
log that nevertheless holds events that do not decode (an older bug, a hand edit, a newer
whirr) still reads, replays and takes appends.

The poison is written straight into each backend's log, under the store's feet: a raw
row in SQLite and PostgreSQL, the stand-in reading would yield in memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import apsw
import psycopg
import pytest
from store_support import job_submitted

from whirr.events import (
    LOG_STREAM,
    PROJECT_STREAM,
    EventsVoided,
    JobSubmitted,
    Pending,
    ProjectCreated,
    Recorded,
    Unreadable,
    decode_lenient,
    job_stream,
)
from whirr.services import Jobs
from whirr.store import EventStore, guard
from whirr.store.protocol import InvalidEvent


def _submitted(**fields: Any) -> JobSubmitted:
    """A job.submitted with ``fields`` as given: a Struct does not check its fields when
    built, so this is what a buggy entry point could hand the store."""
    base: dict[str, Any] = {"job_id": 2, "command_argv": ["true"], "workdir": "/", "run_id": "r"}
    return JobSubmitted(**{**base, **fields})


#: Events the store must refuse, and the field its error must name.
INVALID = [
    (_submitted(env={"A": 1}), "env"),
    (_submitted(env={"A": [1]}), "env"),
    (_submitted(priority="high"), "priority"),
    (_submitted(priority=1.5), "priority"),
    (_submitted(priority=True), "priority"),
    (_submitted(priority=10**30), "priority"),
    (_submitted(gpus=1.5), "gpus"),
    (_submitted(gpus=10**30), "gpus"),
    (_submitted(after_any=7), "after_any"),
    (_submitted(after=[0]), "after"),
    (_submitted(job_id=2**63), "job_id"),
    (_submitted(retries=1000), "retries"),
    (_submitted(retry_delay=math.nan), "retry_delay"),
    (_submitted(timeout_seconds=math.nan), "timeout_seconds"),
    (_submitted(timeout_seconds=math.inf), "timeout_seconds"),
    (_submitted(timeout_seconds=0.0), "timeout_seconds"),
    (_submitted(config={"x": object()}), "job.submitted"),
    (Unreadable(event_type="job.submitted", error="", data="{}"), "Unreadable"),
]

#: Stored data that does not decode: the issue's sweep options, garbage, an unknown type.
POISON: list[tuple[str, bytes]] = [
    (
        "job.submitted",
        b'{"type":"job.submitted","job_id":2,"command_argv":["echo"],'
        b'"workdir":"/","run_id":"job-2","env":{"A":1}}',
    ),
    (
        "job.submitted",
        b'{"type":"job.submitted","job_id":3,"command_argv":["echo"],'
        b'"workdir":"/","run_id":"job-3","priority":"high"}',
    ),
    (
        "job.submitted",
        b'{"type":"job.submitted","job_id":4,"command_argv":["echo"],'
        b'"workdir":"/","run_id":"job-4","gpus":1.5}',
    ),
    (
        "job.submitted",
        b'{"type":"job.submitted","job_id":5,"command_argv":["echo"],'
        b'"workdir":"/","run_id":"job-5","after_any":7}',
    ),
    ("garbage", b'"not an event at all"'),
    ("job.teleported", b'{"type":"job.teleported","job_id":1}'),
]


def write_raw(backend: Any, store: EventStore, stream: str, kind: str, data: bytes) -> int:
    """Append ``data`` to the log as it is, bypassing every check; returns its position."""
    position = store.head() + 1
    if backend.name == "memory":
        event = decode_lenient([data])[0]
        store._log.append(Recorded(position, datetime.now(UTC), stream, event))  # type: ignore[attr-defined]
    elif backend.name == "sqlite":
        conn = apsw.Connection(backend.url.removeprefix("sqlite://"))
        try:
            conn.set_busy_timeout(10_000)
            conn.execute(
                "INSERT INTO events (position, stream, type, recorded_us, data) "
                "VALUES (?, ?, ?, 0, ?)",
                (position, stream, kind, data),
            )
        finally:
            conn.close()
    else:
        with psycopg.connect(backend.url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO events (position, stream, type, recorded_at, data) "
                "VALUES (%s, %s, %s, now(), %s::json)",
                (position, stream, kind, data.decode()),
            )
    return position


def poison(backend: Any, store: EventStore) -> list[int]:
    """Write every ``POISON`` entry into the log; their positions."""
    return [
        write_raw(backend, store, job_stream(2 + i), kind, data)
        for i, (kind, data) in enumerate(POISON)
    ]


class PoisonContract:
    """Validation before append and replay that never bricks, on every backend."""

    @pytest.fixture
    def told(self) -> Iterator[list[list[int]]]:
        """What the store tells about undecodable events: positions, per notice."""
        notices: list[list[int]] = []
        guard.listen(lambda found: notices.append([r.position for r in found]))
        yield notices
        guard.listen(guard._Warner())

    @pytest.mark.parametrize(("event", "field"), INVALID, ids=[f for _, f in INVALID])
    def test_an_invalid_event_is_refused_naming_the_field(
        self, store: EventStore, event: Any, field: str
    ) -> None:
        store.append([job_submitted(1)])
        with pytest.raises(InvalidEvent, match=field):
            store.append([job_submitted(5), Pending("job-2", event)])
        assert store.head() == 1  # the valid event beside it was not appended either
        assert store.job(5) is None
        assert [r.position for r in store.read()] == [1]

    def test_a_poisoned_log_reads_replays_and_takes_appends(
        self, backend: Any, store: EventStore, told: list[list[int]]
    ) -> None:
        jobs = Jobs(store)
        jobs.submit(["true"], "/", check=False)  # job 1, position 1
        positions = poison(backend, store)
        records = store.read()
        assert [r.position for r in records] == [1, *positions]
        stand_ins = [r.event for r in records[1:]]
        assert all(isinstance(e, Unreadable) for e in stand_ins)
        assert [e.event_type for e in stand_ins] == [  # type: ignore[attr-defined]
            "job.submitted",
            "job.submitted",
            "job.submitted",
            "job.submitted",
            "?",
            "job.teleported",
        ]
        assert "env" in stand_ins[0].error  # type: ignore[attr-defined]
        assert told and told[-1] == positions
        # A read asking for a type leaves out what did not decode as one.
        assert [r.position for r in store.read(types=["job.submitted"])] == [1]
        # Replay skips them; the views are those of the valid events.
        assert store.rebuild() == len(records)
        assert [j.id for j in store.jobs()] == [1]
        # The log takes appends after them, and commands keep working.
        job = jobs.submit(["true"], "/", check=False)
        assert store.job(job.id) is not None and store.job(job.id).status == "queued"  # type: ignore[union-attr]
        assert jobs.cancel(1)[1].status == "cancelled"
        assert store.read(after=store.head() - 1)[0].event.job_id == 1  # type: ignore[attr-defined]

    def test_a_skipped_jobs_id_is_never_handed_out_again(
        self, backend: Any, store: EventStore, told: list[list[int]]
    ) -> None:
        """Replay skips the poisoned job.submitted of jobs 2-5 (and the unreadable events
        on the streams of jobs 6 and 7), so the views end at job 1; the next job must
        still be numbered above every job stream in the log, or it would take an id (and
        a run directory) the log already gave out (issue 18)."""
        jobs = Jobs(store)
        jobs.submit(["true"], "/", check=False)  # job 1
        poison(backend, store)
        store.rebuild()
        assert store.max_job_id() == 7
        assert jobs.submit(["true"], "/", check=False).id == 8
        assert jobs.submit(["true"], "/", check=False).id == 9
        # A log that says an earlier history used ids up to 40 (whirr init
        # --force-new-history) numbers above that, on every backend.
        with backend.fresh() as fresh:
            fresh.append([Pending(PROJECT_STREAM, ProjectCreated("p", job_id_floor=40))])
            assert Jobs(fresh).submit(["true"], "/", check=False).id == 41
            fresh.rebuild()
            assert Jobs(fresh).submit(["true"], "/", check=False).id == 42

    def test_voided_positions_are_no_longer_told(
        self, backend: Any, store: EventStore, told: list[list[int]]
    ) -> None:
        store.append([job_submitted(1)])
        positions = poison(backend, store)
        store.read()
        assert told == [positions]
        voided = EventsVoided(positions=positions[:-1], reason="test")
        store.append([Pending(LOG_STREAM, voided)])
        told.clear()
        store.read()
        assert told == [positions[-1:]]
        store.append([Pending(LOG_STREAM, EventsVoided(positions=positions[-1:]))])
        told.clear()
        assert len(store.read()) == 3 + len(positions)
        assert told == []
        assert store.rebuild() == 3 + len(positions)

    def test_the_warning_names_the_position_and_the_way_out(
        self, backend: Any, store: EventStore, capsys: pytest.CaptureFixture[str]
    ) -> None:
        guard.listen(guard._Warner())
        store.append([job_submitted(1)])
        first = poison(backend, store)[0]
        store.read()
        store.read()
        err = capsys.readouterr().err
        assert err.count("Warning:") == 1, err  # once per process, however many reads
        assert f"position(s) {first}," in err and "whirr repair" in err
        assert "Expected `str`, got `int` - at `$.env[...]`" in err
