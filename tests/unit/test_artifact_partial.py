"""``Partial``: a batch of an artifact upload is written and hashed on two threads at once
(both release the GIL); the running sha256 is kept only while it covers exactly the
bytes written, so a failed write never leaves a hash that a resumed upload would trust."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from whirr.services.artifact_uploads import Partial


def test_write_and_hash_side_by_side_give_the_files_sha256(tmp_path: Path) -> None:
    path = tmp_path / "part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    partial = Partial(fd, 0, hashlib.sha256())
    batches = [[os.urandom(1 << 16) for _ in range(n % 5 + 1)] for n in range(40)]
    with ThreadPoolExecutor(2) as pool:
        for batch in batches:
            done = [pool.submit(partial.write, batch), pool.submit(partial.hash, batch)]
            for future in done:
                future.result()
    partial.close()
    data = path.read_bytes()
    assert partial.size == partial.hashed_to == len(data)
    assert partial._hasher.hexdigest() == hashlib.sha256(data).hexdigest()  # type: ignore[union-attr]


def test_a_failed_write_leaves_the_hash_ahead_of_the_file(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "part", os.O_RDONLY | os.O_CREAT, 0o600)  # writes fail
    partial = Partial(fd, 0, hashlib.sha256())
    partial.hash([b"abc"])
    with pytest.raises(OSError):
        partial.write([b"abc"])
    partial.close()
    assert (partial.size, partial.hashed_to) == (0, 3)  # finish_write then drops the hash
