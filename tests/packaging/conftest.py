from __future__ import annotations

import pytest
from installs import Venv, install_all


@pytest.fixture(scope="session")
def installs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Venv]:
    """A fresh venv per extra (``none``, ``analytics``, ``server``, ``dashboard``,
    ``sweeps``), and ``sanic-only`` (whirr and sanic), each installed from a wheel of this
    checkout."""
    return install_all(tmp_path_factory.mktemp("installs"))
