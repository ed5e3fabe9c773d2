"""Just enough of a Dockerfile reader to replay an image's build and start without docker:
the instructions with their continuation lines joined, ENV, WORKDIR, COPY, the ``pip
install`` commands of RUN, ENTRYPOINT/CMD and HEALTHCHECK's command."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath


@dataclass
class Image:
    """What the tests replay from a Dockerfile."""

    env: dict[str, str] = field(default_factory=dict)
    workdir: PurePosixPath = field(default_factory=lambda: PurePosixPath("/"))
    #: (sources relative to the build context, destination in the image, whether the
    #: destination is a directory the sources go into)
    copies: list[tuple[list[str], PurePosixPath, bool]] = field(default_factory=list)
    #: (working directory, command): each ``pip install`` of each RUN, in order
    pip_installs: list[tuple[PurePosixPath, str]] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] | None = None

    @property
    def argv(self) -> list[str]:
        """What the container runs: ENTRYPOINT, then CMD."""
        return [*self.entrypoint, *self.cmd]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, rest = whole.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def _exec_form(rest: str) -> list[str]:
    if rest.startswith("["):
        return [str(part) for part in json.loads(rest)]
    return ["/bin/sh", "-c", rest]


def read(text: str) -> Image:
    """The image that ``text`` (a Dockerfile) builds."""
    image = Image()
    for keyword, rest in instructions(text):
        if keyword == "ENV":
            parts = shlex.split(rest)
            if parts and "=" not in parts[0]:  # the old form: ENV KEY value
                image.env[parts[0]] = rest.split(None, 1)[1]
            else:
                image.env.update(part.split("=", 1) for part in parts)  # type: ignore[misc]
        elif keyword == "WORKDIR":
            image.workdir = image.workdir / rest
        elif keyword == "COPY":
            parts = [p for p in shlex.split(rest) if not p.startswith("--")]
            into = len(parts) > 2 or parts[-1].endswith("/")
            image.copies.append((parts[:-1], image.workdir / parts[-1], into))
        elif keyword == "RUN":
            for command in re.split(r"&&|;", rest):
                words = shlex.split(command)
                if words[:2] == ["pip", "install"] or words[1:4] == ["-m", "pip", "install"]:
                    image.pip_installs.append((image.workdir, command.strip()))
        elif keyword == "ENTRYPOINT":
            image.entrypoint = _exec_form(rest)
        elif keyword == "CMD":
            image.cmd = _exec_form(rest)
        elif keyword == "HEALTHCHECK":
            command = re.search(r"(?:^|\s)CMD\s+(.*)$", rest)  # after its --options
            image.healthcheck = _exec_form(command.group(1)) if command else None
    return image
