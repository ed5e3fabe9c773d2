"""The ``Shipper`` against a real server: ledgers resumed, offsets the server corrects,
a stale attempt dropped with one message, a server that is away waited for.

Each test records a direct run (attempt 0) through ``POST /runs`` and ships a local run
directory for it, as the tracking library does; the ledgers are those a worker keeps.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pause_proxy import PauseProxy
from server_process import ServerProcess, free_port, wait_for

from whirr.client import WhirrClient
from whirr.shipping import ledger as ledgers
from whirr.shipping.shipper import Shipper
from whirr.tracking.location import new_run_id
from whirr.wire.run_events import RunStartRequest

ROWS = b"".join(b'{"_idx":%d,"loss":0.5}\n' % i for i in range(300))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "srv")
    yield proc
    proc.stop()


@pytest.fixture
def api(server: ServerProcess) -> Iterator[WhirrClient]:
    with WhirrClient(server.url, token=server.token) as client:
        yield client


def direct_run(api: WhirrClient, tmp_path: Path) -> tuple[str, Path]:
    run_id = new_run_id()
    run_dir = tmp_path / "runs" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_bytes(ROWS)
    (run_dir / "output.log").write_bytes(b"hello\n")
    api.start_run(RunStartRequest(run_id=run_id, run_dir=str(run_dir)))
    return run_id, run_dir


def shipper_for(server: ServerProcess, ledger_dir: Path, said: list[str]) -> Shipper:
    def open_client() -> WhirrClient:
        return WhirrClient(server.url, token=server.token, timeout=5)

    return Shipper(open_client, ledger_dir=ledger_dir, say=said.append, interval=0.05)


def server_bytes(api: WhirrClient, run_id: str) -> bytes:
    return api.run_file(run_id, "metrics").data


def test_a_ledger_ahead_of_the_server_resumes_from_the_servers_size(
    server: ServerProcess, api: WhirrClient, tmp_path: Path
) -> None:
    run_id, run_dir = direct_run(api, tmp_path)
    api.upload_run_file(run_id, "metrics.jsonl", 0, 0, ROWS[:100])
    # A ledger that claims more than the server has (a server restored from a backup).
    book = ledgers.Ledger(run_id=run_id, attempt=0, run_dir=str(run_dir))
    book.stream("metrics.jsonl").acked = 5000
    ledger_dir = tmp_path / "shipping"
    ledgers.save(ledger_dir, book)
    said: list[str] = []
    shipper = shipper_for(server, ledger_dir, said)
    assert shipper.resume() == [run_id]
    shipper.start()
    try:
        wait_for(lambda: not shipper.shipping(run_id), timeout=30)
    finally:
        shipper.close()
    assert server_bytes(api, run_id) == ROWS
    assert api.run_files(run_id).files["metrics.jsonl"].state == "complete"
    assert not ledgers.load_all(ledger_dir), "the ledger is dropped once all is shipped"
    assert said == [], said


def test_a_stale_attempt_is_dropped_and_said_once(
    server: ServerProcess, api: WhirrClient, tmp_path: Path
) -> None:
    run_id, run_dir = direct_run(api, tmp_path)
    ledger_dir = tmp_path / "shipping"
    ledgers.save(ledger_dir, ledgers.Ledger(run_id=run_id, attempt=3, run_dir=str(run_dir)))
    said: list[str] = []
    shipper = shipper_for(server, ledger_dir, said)
    shipper.resume()
    shipper.start()
    try:
        wait_for(lambda: not shipper.shipping(run_id), timeout=30)
    finally:
        shipper.close()
    assert len(said) == 1 and "newer attempt" in said[0], said
    assert not ledgers.load_all(ledger_dir)
    assert server_bytes(api, run_id) == b""


def test_a_server_away_is_waited_for_and_nothing_is_lost_or_doubled(
    server: ServerProcess, api: WhirrClient, tmp_path: Path
) -> None:
    run_id, run_dir = direct_run(api, tmp_path)
    said: list[str] = []
    # The shipper goes through a proxy that first leads nowhere (nothing listens there).
    proxy = PauseProxy(free_port())

    def open_client() -> WhirrClient:
        return WhirrClient(proxy.url, token=server.token, timeout=5)

    shipper = Shipper(open_client, ledger_dir=tmp_path / "shipping", say=said.append)
    try:
        shipper.add(run_id, run_dir, 0, {})
        shipper.start()
        done = shipper.end(run_id, flush_s=0.5)
        assert done.wait(10), "the flush gives up for now after its bound"
        assert shipper.shipping(run_id), "the run is kept, to ship once the server answers"
        assert any("unreachable" in line for line in said), said
        assert server_bytes(api, run_id) == b""
        proxy.point_at(server.port)  # the server is back
        shipper.release(run_id)
        wait_for(lambda: not shipper.shipping(run_id), timeout=60)
    finally:
        shipper.close()
        proxy.close()
    assert server_bytes(api, run_id) == ROWS
    assert api.run_files(run_id).files["output.log"].attempt_size == len(b"hello\n")
    assert any("answers again" in line for line in said), said
    assert sum("unreachable" in line for line in said) == 1, said


def test_a_large_artifact_upload_does_not_hold_up_the_streams(
    server: ServerProcess, api: WhirrClient, tmp_path: Path
) -> None:
    """The artifact goes up on the lane's own thread and connection (here through a
    proxy slowed to 4 MiB/s: a 24 MiB file takes about 6 s), and a metrics row logged
    meanwhile is on the server within about a second, while the upload is still on."""
    run_id, run_dir = direct_run(api, tmp_path)
    (run_dir / "artifacts").mkdir()
    block = os.urandom(1 << 20)
    big = block * 24
    (run_dir / "artifacts" / "model.bin").write_bytes(big)
    proxy = PauseProxy(server.port)
    proxy.throttle(4 << 20)

    def open_client() -> WhirrClient:
        return WhirrClient(server.url, token=server.token, timeout=5)

    def open_artifact_client() -> WhirrClient:
        return WhirrClient(proxy.url, token=server.token, timeout=30)

    said: list[str] = []
    shipper = Shipper(
        open_client,
        ledger_dir=tmp_path / "shipping",
        say=said.append,
        interval=0.05,
        open_artifact_client=open_artifact_client,
    )
    try:
        shipper.add(run_id, run_dir, 0, {})
        shipper.start()
        wait_for(lambda: server_bytes(api, run_id) == ROWS, timeout=30)
        wait_for(lambda: api.artifact_upload_size(run_id, "model.bin", 0).size > 0, timeout=30)
        row = b'{"_idx":300,"loss":0.25}\n'
        with (run_dir / "metrics.jsonl").open("ab") as fh:
            fh.write(row)
        logged = time.monotonic()
        wait_for(lambda: server_bytes(api, run_id).endswith(row), timeout=30, interval=0.01)
        seen_after = time.monotonic() - logged
        on_the_way = api.artifact_upload_size(run_id, "model.bin", 0).size
        assert 0 < on_the_way < len(big), "the upload was still under way"
        assert seen_after < 1.5, f"the row took {seen_after:.2f} s behind the artifact"
        proxy.throttle(None)
        assert shipper.end(run_id).wait(60), said
    finally:
        shipper.close(timeout=10)
        proxy.close()
    [saved] = api.get_run(run_id).artifacts
    assert (saved.path, saved.size) == ("model.bin", len(big))
    assert saved.sha256 == hashlib.sha256(big).hexdigest()
    files = api.run_files(run_id)
    assert files.files["metrics.jsonl"].state == "complete", files
    assert said == [], said
