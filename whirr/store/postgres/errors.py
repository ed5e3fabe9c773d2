"""What a failed PostgreSQL write or read says: one line, as the SQLite store's
(``whirr.store.sqlite.store.write_error``). A full disk, a read-only database, an I/O error
or a lost connection is outside whirr: a write that meets one is a ``StoreWriteError``
(nothing of it was recorded; fix the cause and the same write may succeed), which a worker
waits out instead of stopping."""

from __future__ import annotations

import psycopg

from whirr.store.protocol import StoreError, StoreWriteError

#: SQLSTATEs of causes outside whirr, and what to tell the user.
_OUTSIDE = {
    "53100": "the database server's disk is full; free some space and try again",
    "53200": "the database server is out of memory; try again",
    "25006": (
        "the database is read-only (default_transaction_read_only, or a standby server); "
        "make it writable and try again"
    ),
    "58030": "the database server had an I/O error; check its disk and try again",
    "57P01": "the database server ended the connection (shut down, or terminated it); try again",
    "57P02": "the database server is restarting; try again once it is back",
    "57P03": "the database server is not accepting connections yet; try again",
}


def outside_cause(exc: BaseException) -> str | None:
    """What ``exc`` means when its cause is outside whirr (disk, read-only, I/O, a lost or
    refused connection), else None."""
    if not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate or ""
    if state in _OUTSIDE:
        return _OUTSIDE[state]
    if state.startswith("08") or (not state and isinstance(exc, psycopg.OperationalError)):
        return f"lost the connection to the database server ({one_line(exc)}); try again"
    return None


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (psycopg's may add DETAIL or HINT lines)."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return exc.diag.message_primary
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def write_error(where: str, exc: BaseException, what: str) -> StoreError:
    """A failed write to the store at ``where``: a ``StoreWriteError`` when the cause is
    outside whirr, else a ``StoreError``; ``what`` says what became of the write."""
    cause = outside_cause(exc)
    if cause is not None:
        error: StoreError = StoreWriteError(
            f"cannot write to the PostgreSQL store at {where}: {cause} ({what})"
        )
    else:
        error = StoreError(f"PostgreSQL store at {where}: {one_line(exc)} ({what})")
    error.__cause__ = exc
    return error


def read_error(where: str, exc: BaseException, doing: str = "") -> StoreError:
    """A failed read (or open) of the store at ``where``, on one line."""
    cause = outside_cause(exc) or one_line(exc)
    return StoreError(f"{doing or 'PostgreSQL store'} at {where}: {cause}")
