"""repo2docker's command line and its JSON log lines. Pure functions."""

from __future__ import annotations

import json
from typing import Any

from .model import LogLine
from .settings import Repo2DockerSettings

CONTENT_PROVIDER_CONFIG = """\
# Written by binderhub-service. Only the Git content provider: the others probe
# hosts on the internet (Dataverse fetches a host list) before looking at the URL.
import repo2docker.contentproviders

c.Repo2Docker.content_providers = [repo2docker.contentproviders.Git]
"""


def repo2docker_args(
    settings: Repo2DockerSettings, *, image: str, repo: str, sha: str, config_file: str | None
) -> list[str]:
    """The arguments after the repo2docker command; the repository URL is always last."""
    args: list[str] = []
    if config_file is not None:
        args += ["--config", config_file]
    args += [
        "--no-run",
        "--push",
        "--json-logs",
        "--user-id",
        str(settings.user_id),
        "--user-name",
        settings.user_name,
        "--image-name",
        image,
        "--ref",
        sha,
    ]
    if settings.target_repo_dir:
        args += ["--target-repo-dir", settings.target_repo_dir]
    args += list(settings.extra_args)
    args.append(repo)
    return args


def parse_log_line(raw: str) -> LogLine | None:
    """One line of ``--json-logs`` output as a LogLine; None for pure progress updates.

    repo2docker writes ``{"phase": …, "message": …}`` per line; docker's push progress
    comes as many lines with a ``progress`` key that say nothing a reader needs.
    Lines that are not JSON (tracebacks) are kept as they are.
    """
    text = raw.rstrip("\r\n")
    if not text:
        return None
    try:
        data: Any = json.loads(text)
    except ValueError:
        return LogLine(phase="", message=text)
    if not isinstance(data, dict):
        return LogLine(phase="", message=text)
    if "progress" in data or "layers" in data:
        return None
    message = str(data.get("message", "")).rstrip("\n")
    if not message.strip():
        return None  # docker's build stream sends bare newlines between steps
    return LogLine(phase=str(data.get("phase", "")), message=message)
