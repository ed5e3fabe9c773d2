"""plotly.js gzipped once and kept in the dashboard's cache directory between starts."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from whirr.dashboard import assets


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has loaded no asset yet."""
    monkeypatch.setattr(assets, "_cache", {})


def test_plotly_is_compressed_once_then_read_back(
    fresh: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = assets.load(assets.PLOTLY, tmp_path)
    kept = list(tmp_path.glob("plotly-*.js.gz"))
    assert len(kept) == 1 and kept[0].read_bytes() == first.gzipped
    assert gzip.decompress(first.gzipped) == first.body

    monkeypatch.setattr(assets, "_cache", {})  # the next start

    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("plotly.js was compressed again")

    monkeypatch.setattr(assets.gzip, "compress", refuse)
    again = assets.load(assets.PLOTLY, tmp_path)
    assert again.gzipped == first.gzipped and again.etag == first.etag


def test_a_damaged_or_old_copy_is_replaced(fresh: None, tmp_path: Path) -> None:
    old = tmp_path / "plotly-0123456789abcdef0123.js.gz"  # an earlier plotly's
    old.write_bytes(gzip.compress(b"old plotly"))
    body = assets.load(assets.PLOTLY, tmp_path).body
    (kept,) = tmp_path.glob("plotly-*.js.gz")
    assert kept != old and not old.exists()
    kept.write_bytes(kept.read_bytes()[:1000])  # cut short (a full disk, a crash)
    assets._cache.clear()
    assert gzip.decompress(assets.load(assets.PLOTLY, tmp_path).gzipped) == body
    assert gzip.decompress(kept.read_bytes()) == body


def test_an_unwritable_cache_directory_costs_only_the_copy(fresh: None, tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the directory would go")
    asset = assets.load(assets.PLOTLY, blocker / "dashboard")
    assert gzip.decompress(asset.gzipped) == asset.body


def test_small_files_are_never_kept(fresh: None, tmp_path: Path) -> None:
    assets.load("core.js", tmp_path)
    assert list(tmp_path.iterdir()) == []
