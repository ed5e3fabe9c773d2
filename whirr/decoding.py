"""msgspec decoders built on first use.

Building a decoder for a large tagged union or a nested view costs about a millisecond
each, and a CLI command uses one or two of the dozen the modules define: building them
at import time made every command pay for all of them.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class LazyDecoder(Generic[T]):
    """Decode JSON into ``type_`` (one document, or many at once) once first needed."""

    __slots__ = ("_many", "_one", "_type")

    def __init__(self, type_: Any) -> None:
        self._type = type_
        self._one: msgspec.json.Decoder[T] | None = None
        self._many: msgspec.json.Decoder[list[T]] | None = None

    def one(self, data: bytes | str) -> T:
        """Decode one JSON document."""
        if self._one is None:
            self._one = msgspec.json.Decoder(self._type)
        return self._one.decode(data)

    def many(self, datas: list[bytes]) -> list[T]:
        """Decode many JSON documents in one call into msgspec (not one call each)."""
        if self._many is None:
            self._many = msgspec.json.Decoder(list[self._type])  # type: ignore[name-defined]
        return self._many.decode(b"[" + b",".join(datas) + b"]")
