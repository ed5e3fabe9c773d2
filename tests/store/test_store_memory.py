"""The store contract on the in-memory backend."""

from __future__ import annotations

import pytest
from store_backends import Backend
from store_contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def backend(self, memory_backend: Backend) -> Backend:
        return memory_backend
