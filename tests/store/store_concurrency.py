"""The concurrency part of the store contract: many threads transacting at once on shared
handles, some of whose decisions raise, each get exactly their own outcome.

(On PostgreSQL the decisions of one handle are group-committed, many to a transaction:
this is what must not leak between them. On SQLite and memory each is its own
transaction, and the same outcomes must hold.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store_support import run_threads, seen

from whirr.events import JobSubmitted, Pending, Recorded, WorkerSeen
from whirr.store.protocol import EventStore, InvalidEvent, ViewReader

THREADS = 16
DECISIONS = 12  # per thread


class Refused(Exception):
    """A decision's own exception, which must reach its caller and nobody else."""


class Abandoned(BaseException):
    """Not an ``Exception`` (like ``KeyboardInterrupt``): must not wedge the store either."""


#: Decision kinds: one event; two events; one event placed right after the head the
#: decision read; a refusal after reading views; a ``BaseException``; and (durable stores,
#: which encode events) an event followed by one that cannot be encoded.
ONE, TWO, AFTER_HEAD, REFUSE, ABANDON, HALF_WAY = range(6)


def _name(thread: int, n: int, part: str = "") -> str:
    return f"t{thread}-{n}{part}"


def _unencodable(name: str) -> Pending:
    event = JobSubmitted(
        job_id=1, command_argv=["x"], workdir="/", run_id=name, config={"x": object()}
    )
    return Pending(f"job-{name}", event)


def _decide(kind: int, thread: int, n: int, heads: list[int]) -> Any:
    def decide(reader: ViewReader) -> Sequence[Pending]:
        name = _name(thread, n)
        if kind == ONE:
            return [seen(name)]
        if kind == TWO:
            return [seen(_name(thread, n, "a")), seen(_name(thread, n, "b"))]
        if kind == AFTER_HEAD:
            heads.append(reader.head())
            return [seen(name)]
        if kind == REFUSE:
            reader.worker(name)
            reader.claimable_jobs(5)
            raise Refused(thread, n)
        if kind == ABANDON:
            raise Abandoned(thread, n)
        return [seen(name), _unencodable(name)]  # HALF_WAY

    return decide


def _worker(store: EventStore, thread: int, kinds: Sequence[int]) -> list[tuple[int, Any]]:
    """Run this thread's decisions; what each one came to, in order."""
    outcomes: list[tuple[int, Any]] = []
    for n in range(DECISIONS):
        kind = kinds[(thread + n) % len(kinds)]
        heads: list[int] = []
        try:
            recorded = store.transact(_decide(kind, thread, n, heads))
        except (Exception, Abandoned) as exc:
            outcomes.append((kind, exc))
        else:
            outcomes.append((kind, (recorded, heads)))
    return outcomes


def check_mixed_transactions(backend: Any, kinds: Sequence[int]) -> None:
    """Many threads on two shared handles transact at once: each caller gets exactly its
    own records or exception, and the log holds exactly the successful decisions' events,
    densely numbered."""
    handles = [backend.open(), backend.open()]
    results = run_threads(
        [lambda t=t: _worker(handles[t % len(handles)], t, kinds) for t in range(THREADS)]
    )
    expected: dict[int, str] = {}  # position -> worker id of the event there
    for thread, outcomes in enumerate(results):
        for n, (kind, outcome) in enumerate(outcomes):
            name = _name(thread, n)
            if kind == REFUSE:
                assert isinstance(outcome, Refused) and outcome.args == (thread, n)
            elif kind == ABANDON:
                assert isinstance(outcome, Abandoned) and outcome.args == (thread, n)
            elif kind == HALF_WAY:
                assert isinstance(outcome, InvalidEvent), outcome
            else:
                recorded, heads = outcome
                assert all(isinstance(r, Recorded) for r in recorded)
                names = [_name(thread, n, "a"), _name(thread, n, "b")] if kind == TWO else [name]
                assert [r.event for r in recorded] == [WorkerSeen(worker_id=w) for w in names]
                assert [r.position for r in recorded] == list(
                    range(recorded[0].position, recorded[0].position + len(names))
                )
                if kind == AFTER_HEAD:  # the head it read counted every earlier decision
                    assert recorded[0].position == heads[0] + 1
                for rec, worker_id in zip(recorded, names, strict=True):
                    assert rec.position not in expected
                    expected[rec.position] = worker_id
    log = handles[0].read()
    assert [r.position for r in log] == list(range(1, len(log) + 1))
    assert {r.position: r.event.worker_id for r in log} == expected  # type: ignore[attr-defined]
    assert handles[1].head() == len(log) == len(expected)
    # Still usable: the failures wedged nothing.
    assert handles[1].append([seen("after")]) == len(log) + 1


class ConcurrencyContract:
    """Concurrent transactions with failures, on every backend."""

    def test_concurrent_transactions_get_their_own_outcomes(self, backend: Any) -> None:
        check_mixed_transactions(backend, [ONE, REFUSE, TWO, AFTER_HEAD, ABANDON, ONE])
