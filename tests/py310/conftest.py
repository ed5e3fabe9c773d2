"""A Python 3.10 venv with this checkout installed, for the tracking tests on 3.10.

The tracking library (``import whirr``) promises Python 3.10 (docs/python-api.md), while
the rest of whirr needs 3.11. The 3.10 interpreter is ``WHIRR_TEST_PYTHON310``, else
pyenv's newest ``~/.pyenv/versions/3.10.*``, else ``python3.10`` on PATH; without one the
tests fail (they never skip: the promise would go untested). The venv is built once per
test session from a copy of the working tree (so pip builds nothing inside the checkout),
with no extras but httpx, which a run recorded on a server needs; pip's cache keeps
it quick (~15 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON310_VAR = "WHIRR_TEST_PYTHON310"
#: What the tracking library needs beyond whirr's own dependencies: a run that a server
#: records (``WHIRR_SERVER_URL``) sends its events with httpx.
TRACKING_EXTRAS = ["httpx>=0.27"]


def is_python310(python: Path) -> bool:
    """Whether ``python`` runs and is a CPython 3.10."""
    try:
        done = subprocess.run(
            [str(python), "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == "True"


def version_key(path: Path) -> tuple[int, ...]:
    """``~/.pyenv/versions/3.10.13/bin/python`` -> (3, 10, 13), for the newest first."""
    parts = path.parents[1].name.split(".")
    return tuple(int(p) if p.isdigit() else -1 for p in parts)


def find_python310() -> tuple[Path | None, list[str]]:
    """A Python 3.10 interpreter, and every place looked at (for the failure message)."""
    candidates: list[Path] = []
    given = os.environ.get(PYTHON310_VAR)
    if given:
        candidates.append(Path(given))
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pyenv = sorted(pyenv_root.glob("versions/3.10.*/bin/python"), key=version_key, reverse=True)
    candidates += pyenv
    on_path = shutil.which("python3.10")
    if on_path:
        candidates.append(Path(on_path))
    tried = [str(c) for c in candidates] or [
        f"${PYTHON310_VAR} (unset)",
        f"{pyenv_root}/versions/3.10.*/bin/python (none)",
        "python3.10 on PATH (none)",
    ]
    for candidate in candidates:
        if is_python310(candidate):
            return candidate, tried
    return None, tried


@pytest.fixture(scope="session")
def python310() -> Path:
    """The Python 3.10 interpreter the venv is made from."""
    found, tried = find_python310()
    if found is None:
        pytest.fail(
            "no Python 3.10 interpreter found (tried: " + ", ".join(tried) + "); install one "
            f"(`pyenv install 3.10`) or name it in {PYTHON310_VAR}: the tracking library "
            "promises 3.10 and these tests check it",
            pytrace=False,
        )
    return found


def copy_checkout(dest: Path) -> Path:
    """What ``pip install`` needs of the working tree, copied to ``dest``."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(
        REPO / "whirr", dest / "whirr", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return dest


@pytest.fixture(scope="session")
def venv310(python310: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a 3.10 venv with this checkout installed (no extras, plus httpx)."""
    root = tmp_path_factory.mktemp("py310")
    source = copy_checkout(root / "src")
    venv = root / "venv"
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    steps = (
        [str(python310), "-m", "venv", str(venv)],
        [*pip, str(source), *TRACKING_EXTRAS],
    )
    for step in steps:
        try:
            done = subprocess.run(
                step, cwd=root, env=env, capture_output=True, text=True, timeout=600
            )
            failure = "" if done.returncode == 0 else done.stdout + done.stderr
        except subprocess.TimeoutExpired:
            failure = "timed out after 600 s"
        if failure:
            pytest.fail(f"cannot build the 3.10 venv ({' '.join(step)}): {failure}")
    return python
