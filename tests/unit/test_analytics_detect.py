"""Column detection: the first-line guess checked over every line gives exactly what
DuckDB's ``json_group_structure`` over every line gives, and falls back to it when the
guess fails."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from whirr.analytics.detect import _checked, _first_keys, _fixed, _structures, detect_columns
from whirr.analytics.segment import Segment

#: name -> file content. Each is a case the guess must get right or hand over.
FILES = {
    # whirr's usual shape: every key on every line; an int that turns float.
    "plain": b'{"_idx":0,"_timestamp":"t0","step":0,"loss":1,"acc":0.5}\n'
    b'{"_idx":1,"_timestamp":"t1","step":1,"loss":0.5,"acc":null}\n',
    # a torn last line is skipped, as when the file is read
    "torn": b'{"_idx":0,"step":0,"loss":1.5}\n{"_idx":1,"step":1,"lo',
    # keys that need escaping in a JSON pointer, unicode, mixed types per key
    "odd keys": '{"_idx":0,"a/b":1,"c~d":"x","ü\\"q":true,"n":null}\n'
    '{"_idx":1,"a/b":2.5,"c~d":3,"ü\\"q":false,"n":null}\n'.encode(),
    # values that are objects and arrays are JSON
    "nested": b'{"_idx":0,"o":{"x":1},"l":[1,2],"s":"a"}\n{"_idx":1,"o":null,"l":[],"s":1}\n',
    # a key first logged on a later line: the guess fails, the exact pass answers
    "late key": b'{"_idx":0,"step":0,"loss":1.0}\n{"_idx":1,"step":1,"loss":0.5,"val":2}\n',
    # a line that is not an object
    "not object": b'{"_idx":0,"loss":1.0}\n[1,2]\n',
    # a first line without its newline (the whole file is one torn line)
    "one torn line": b'{"_idx":0,"loss":1.0',
    # a first line that is an empty object
    "empty first": b'{}\n{"_idx":1,"loss":1.0}\n',
    # a damaged step and a float timestamp: whirr's own keys keep their types
    "own keys": b'{"_idx":0,"_timestamp":1.5,"step":"x","loss":1}\n',
}


@pytest.fixture
def segments(tmp_path: Path) -> list[Segment]:
    out = []
    for n, (name, content) in enumerate(FILES.items()):
        path = tmp_path / f"run-{n}" / "metrics.jsonl"
        path.parent.mkdir()
        path.write_bytes(content)
        out.append(Segment(name, "metrics", path, len(content), 0, True))
    return out


def test_detection_equals_json_group_structure_over_every_line(segments: list[Segment]) -> None:
    con = duckdb.connect()
    detected = detect_columns(con, segments)
    exact = _structures(con, [str(s.path) for s in segments])
    for seg in segments:
        assert detected.get(seg.path) == (
            _fixed(exact[str(seg.path)]) if str(seg.path) in exact else None
        ), seg.run_id
    by_name = {seg.run_id: detected.get(seg.path) for seg in segments}
    assert by_name["plain"] == {
        "_idx": "BIGINT",
        "_timestamp": "VARCHAR",
        "step": "BIGINT",
        "loss": "DOUBLE",
        "acc": "DOUBLE",
    }
    assert by_name["odd keys"] == {
        "_idx": "BIGINT",
        "a/b": "DOUBLE",
        "c~d": "JSON",
        'ü"q': "BOOLEAN",
        "n": None,
    }
    assert by_name["nested"] == {"_idx": "BIGINT", "o": "JSON", "l": "JSON", "s": "JSON"}
    assert by_name["late key"] == {
        "_idx": "BIGINT",
        "step": "BIGINT",
        "loss": "DOUBLE",
        "val": "BIGINT",
    }
    assert by_name["not object"] == {}
    assert by_name["own keys"] == {
        "_idx": "BIGINT",
        "_timestamp": "VARCHAR",
        "step": "VARCHAR",
        "loss": "BIGINT",
    }


def test_the_cheap_check_decides_usual_files_and_hands_over_the_rest(
    segments: list[Segment],
) -> None:
    guesses = {str(s.path): _first_keys(s.path) for s in segments}
    passed = _checked(duckdb.connect(), {f: k for f, k in guesses.items() if k})
    names = {s.run_id for s in segments if str(s.path) in passed}
    assert names == {"plain", "torn", "odd keys", "nested", "own keys"}
