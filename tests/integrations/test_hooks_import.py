"""The hooks import their framework only when imported themselves, and a missing
framework is one clear ImportError naming the package to install."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

#: hook module -> the framework modules that, when absent, make it fail, and the package named
HOOKS = {
    "keras": (["keras"], "pip install keras"),
    "xgboost": (["xgboost"], "pip install xgboost"),
    "lightgbm": (["lightgbm"], "pip install lightgbm"),
    "transformers": (["transformers"], "pip install transformers"),
    "lightning": (["lightning", "pytorch_lightning"], "pip install lightning"),
}


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_a_missing_framework_is_named(hook: str, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked, install = HOOKS[hook]
    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: "not installed"
    monkeypatch.delitem(sys.modules, f"whirr.integrations.{hook}", raising=False)
    with pytest.raises(ImportError) as caught:
        importlib.import_module(f"whirr.integrations.{hook}")
    assert str(caught.value).startswith(f"whirr.integrations.{hook} needs ")
    assert f"({install})" in str(caught.value)


def test_the_package_imports_no_framework() -> None:
    code = (
        "import sys, whirr.integrations; print(sorted({'keras', 'jax', 'xgboost', 'lightgbm', "
        "'torch', 'transformers', 'lightning'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == "[]"
