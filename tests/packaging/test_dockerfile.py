"""The Dockerfile builds an image whose command starts (issue 20 §2), checked without docker:
its COPY lines and its RUN lines' ``pip install`` commands, read from the file so the test
cannot drift from it, replayed with pip in a clean venv; then its ENTRYPOINT/CMD is
started against a temporary data dir and its HEALTHCHECK command run against it. The
compose file builds that image and sets only settings the server reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml
from docker_steps import Image, read
from installs import ROOT, Venv, clean_env, uv
from server_process import free_port
from serving import serving

pytestmark = pytest.mark.timeout(600)  # a real pip install, downloads on the first run


def on_disk(root: Path, path: PurePosixPath) -> Path:
    """Where the image's ``path`` lives in the replay."""
    return root / path.relative_to("/")


def replay_copies(image: Image, root: Path) -> None:
    for sources, dest, into in image.copies:
        for source in sources:
            src = ROOT / source
            target = on_disk(root, dest / Path(source).name if into else dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, target)


def container_argv(image: Image, port: int) -> list[str]:
    """The image's command, on a loopback address and a free port (0.0.0.0 and 8080
    inside a container)."""
    argv = list(image.argv)
    for option, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        assert option in argv, f"the image's command sets no {option}: {argv}"
        argv[argv.index(option) + 1] = value
    return argv


def test_dockerfile_installs_a_server_that_starts_and_passes_its_healthcheck(
    tmp_path: Path,
) -> None:
    image = read((ROOT / "Dockerfile").read_text())
    assert image.pip_installs, "no RUN pip install in the Dockerfile"
    root = tmp_path / "image"
    replay_copies(image, root)
    venv = Venv(tmp_path / "venv")  # the image's python, with pip in it
    uv("venv", "--quiet", "--seed", "--python", sys.executable, str(venv.path))
    # The image's ENV, its paths moved into the replay; pip keeps its cache here (the
    # image turns it off to stay small) so that the test takes seconds, not minutes.
    env = {k: v for k, v in image.env.items() if not k.startswith("PIP_")}
    env = {
        k: str(on_disk(root, PurePosixPath(v))) if v.startswith("/") else v for k, v in env.items()
    }
    for workdir, command in image.pip_installs:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=on_disk(root, workdir),
            env=clean_env(venv, **env),
            capture_output=True,
            text=True,
            timeout=480,
            check=False,
        )
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    healthcheck = image.healthcheck
    assert healthcheck, "the Dockerfile has no HEALTHCHECK"
    with serving(
        container_argv(image, port), url, tmp_path / "log", clean_env(venv, **env)
    ) as served:
        probe = [part.replace(":8080/", f":{port}/") for part in healthcheck]
        checked = subprocess.run(
            probe, env=clean_env(venv, **env), capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, checked.stderr
        # The dashboard is served at / (auth is on: its sign-in page).
        page = served.get("/", follow_redirects=True)
        assert page.status_code == 200 and "<form" in page.text, page.text[:500]
    output = served.output()
    assert "export WHIRR_TOKEN=" in output, output  # created in the data dir, shown once
    assert (on_disk(root, PurePosixPath(image.env["WHIRR_DATA_DIR"])) / "token").exists()
    assert "dashboard is off" not in output and "Traceback" not in output, output


def test_compose_builds_that_image_and_sets_only_settings_the_server_reads() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["whirr"]
    assert service["build"] in (".", {"context": "."}), service["build"]
    server_help = subprocess.run(
        [sys.executable, "-m", "whirr.cli.main", "server", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    server_help = " ".join(server_help.split())  # help wraps "[env var: NAME]"
    for name in service.get("environment", {}):
        assert f"env var: {name}" in server_help, f"whirr server does not read {name}"
    # The server inside listens where the image says and compose publishes.
    image = read((ROOT / "Dockerfile").read_text())
    port = image.argv[image.argv.index("--port") + 1]
    assert any(str(p).endswith(f":{port}") for p in service["ports"]), service["ports"]
