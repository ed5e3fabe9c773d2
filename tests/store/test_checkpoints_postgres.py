"""PostgreSQL checkpoints: tables beside the views, written in the rebuild's transaction,
trusted only when their stamp matches this code and this log."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from store_backends import Backend
from store_support import seen, views

from whirr.services import Jobs
from whirr.store import checkpoints
from whirr.store.postgres import PostgresStore
from whirr.store.postgres.schema import Q
from whirr.store.postgres.views import VIEW_TABLES

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(postgres_backend: Backend) -> Iterator[PostgresStore]:
    opened = postgres_backend.open()
    assert isinstance(opened, PostgresStore)
    jobs = Jobs(opened)
    for _ in range(4):
        jobs.submit(["true"], "/", check=False)
    jobs.claim("w", 60)
    jobs.cancel(2)
    yield opened


@pytest.fixture
def warnings_told() -> Iterator[list[str]]:
    told: list[str] = []
    previous = checkpoints.listen(told.append)
    yield told
    checkpoints.listen(previous)


def test_rebuild_starts_from_the_checkpoint(store: PostgresStore) -> None:
    at = store.checkpoint()
    store.append([seen("w2"), seen("w3")])
    live = views(store)
    assert store.rebuild() == store.head() - at == 2
    assert views(store) == live
    assert store.rebuild() == 0
    assert store.rebuild(full=True) == store.head()
    assert views(store) == live


@pytest.mark.parametrize(
    ("stamp", "why"),
    [
        ('{"format": 1}', "its stamp does not decode"),
        (None, "it is ahead of the log"),
        ("other-code", "another version of whirr took it"),
    ],
)
def test_an_untrustworthy_checkpoint_is_ignored(
    store: PostgresStore, warnings_told: list[str], stamp: str | None, why: str
) -> None:
    store.checkpoint()
    with psycopg.connect(store.url, autocommit=True) as conn:
        (current,) = conn.execute(Q["checkpoint_stamp"]).fetchone()  # type: ignore[misc]
        if stamp is None:
            stamp = current.replace(f'"position":{store.head()}', '"position":99')
        elif stamp == "other-code":
            stamp = re.sub(r'"fingerprint":"\w+"', '"fingerprint":"x"', current)
        conn.execute("UPDATE checkpoint_stamp SET data = %s::json", (stamp,))
        # The views, wrong on purpose: a trusted checkpoint would bring this back.
        conn.execute("UPDATE checkpoint_jobs SET status = 'bogus'")
    live = views(store)
    assert store.rebuild() == store.head()
    assert views(store) == live
    assert len(warnings_told) == 1 and why in warnings_told[0]


def test_the_checkpoint_names_every_view_table() -> None:
    tables = {"queue_state" if name == "queue" else name for name in VIEW_TABLES}
    # Kept by write_decision beside the jobs and runs (no projection of their own).
    tables |= {"job_counts", "run_tags"}
    cleared = set(re.findall(r"DELETE FROM (\w+);", Q["clear_projections"]))
    restored = re.findall(
        r"INSERT INTO (\w+) SELECT \* FROM checkpoint_\1;", Q["checkpoint_restore"]
    )
    copied = re.findall(r"INSERT INTO checkpoint_(\w+) SELECT \* FROM \1;", Q["checkpoint_write"])
    assert cleared == set(restored) == set(copied) == tables
