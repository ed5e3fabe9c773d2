"""Fresh installs of this checkout, as a user gets them: a wheel built from the sources,
then one virtual environment per extra, each holding only what that extra brings.

Built with uv, which resolves an extra from the wheel's metadata as pip does and installs
from its cache by hard links: the venvs take seconds instead of a minute of
unpacking (pip itself is exercised by the Dockerfile's test, which runs its pip lines).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from uv import find_uv_bin

ROOT = Path(__file__).resolve().parents[2]
#: What the wheel is built from (what the Dockerfile copies too).
SOURCES = ("pyproject.toml", "README.md", "whirr")
#: The extras a user installs (``none``: plain ``pip install whirr``).
EXTRAS = ("none", "analytics", "server", "dashboard", "sweeps")
#: Beside them, an install by hand: whirr and sanic, none of the dashboard's libraries.
BY_HAND = {"sanic-only": ("sanic",)}


@dataclass(frozen=True)
class Venv:
    """One fresh virtual environment with whirr installed."""

    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def whirr(self) -> Path:
        return self.path / "bin" / "whirr"

    def run(
        self, *args: str | Path, cwd: Path | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``whirr ARGS`` in this venv (output captured, no exception on failure)."""
        return subprocess.run(
            [str(self.whirr), *map(str, args)],
            cwd=cwd,
            env=clean_env(self),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def clean_env(venv: Venv, **extra: str) -> dict[str, str]:
    """The environment a user's shell would give: this venv first on PATH, no whirr
    settings inherited from the test run, no other venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHIRR_")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{venv.path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def uv(*args: str, timeout: float = 480) -> None:
    """uv (from the dev extra); its output is shown only when it fails."""
    done = subprocess.run(
        [find_uv_bin(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode:
        raise AssertionError(f"uv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def copy_sources(dest: Path) -> Path:
    """The files a wheel is built from, without caches or a stale ``build/``."""
    dest.mkdir(parents=True)
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def build_wheel(workdir: Path) -> Path:
    """whirr's wheel, built from a copy of the checkout (in an isolated build env)."""
    source = copy_sources(workdir / "src")
    out = workdir / "dist"
    uv("build", "--quiet", "--wheel", "--out-dir", str(out), str(source))
    (wheel,) = out.glob("whirr-*.whl")
    return wheel


def make_venv(path: Path, wheel: Path, extra: str, also: tuple[str, ...] = ()) -> Venv:
    """A venv holding whirr with ``extra`` (``none``: no extra), and ``also``."""
    uv("venv", "--quiet", "--python", sys.executable, str(path))
    venv = Venv(path)
    wanted = str(wheel) if extra == "none" else f"{wheel}[{extra}]"
    uv("pip", "install", "--quiet", "--python", str(venv.python), wanted, *also)
    return venv


def install_all(workdir: Path) -> dict[str, Venv]:
    """The wheel, then a venv per extra of ``EXTRAS`` and per install of ``BY_HAND``,
    installed side by side."""
    wheel = build_wheel(workdir)
    wanted = {extra: ("none" if extra in BY_HAND else extra) for extra in (*EXTRAS, *BY_HAND)}
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        futures = {
            name: pool.submit(
                make_venv, workdir / f"venv-{name}", wheel, extra, BY_HAND.get(name, ())
            )
            for name, extra in wanted.items()
        }
        return {name: future.result() for name, future in futures.items()}
