"""Events: every tag has a golden fixture that keeps decoding; the codec round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from whirr.events import EVENT_TYPES, TAGS, decode, encode, tag_of

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"


def test_every_event_type_has_a_golden_fixture() -> None:
    have = {p.stem for p in FIXTURES.glob("*.json")}
    missing = sorted(set(TAGS.values()) - have)
    assert not missing, f"add tests/fixtures/events/<tag>.json for: {missing}"


def test_tags_are_unique_and_namespaced() -> None:
    tags = list(TAGS.values())
    assert len(tags) == len(set(tags)) == len(EVENT_TYPES)
    assert all("." in t and t == t.lower() for t in tags)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_golden_fixture_decodes(path: Path) -> None:
    raw = path.read_bytes()
    event = decode(raw)
    assert tag_of(event) == path.stem
    # Every field stored in the fixture survives a decode/encode round trip.
    again = json.loads(encode(event))
    for key, value in json.loads(raw).items():
        assert again[key] == value


def test_unknown_tag_is_rejected() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode(b'{"type": "job.teleported", "job_id": 1}')


def test_events_are_frozen() -> None:
    event = decode((FIXTURES / "job.started.json").read_bytes())
    with pytest.raises(AttributeError):
        event.pid = 1  # type: ignore[misc]
