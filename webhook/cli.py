"""``binderhub-service``: run the server, or run one build in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import TextIO

from jobs.coordinator.build_requests import BuildRequest
from jobs.coordinator.following import Answered, MovedOn, Superseded, follow
from jobs.errors import BuildServiceError, InvalidRequest
from jobs.events import BuildEvent
from jobs.factory import check_builder_version, make_service
from jobs.model import BuildOutcome, BuildState
from jobs.repo2docker.failures import retry_time
from jobs.service import BuildService
from jobs.settings import ConfigError, Settings, load_settings
from jobs.store import open_store

from .logs import configure_logging

DESCRIPTION = """\
Build Jupyter images with repo2docker from git repositories, research-data records
(Zenodo, Figshare, Dataverse, HydroShare, CKAN), Software Heritage and Mercurial, and
push them to a registry, triggered by webhooks, an HTTP API, or a BinderHub-compatible
stream.
"""


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="YAML settings file (default: $BINDERHUB_SERVICE_CONFIG, else built-in "
        "defaults). Environment variables BINDERHUB_SERVICE_<SETTING> override it; "
        "see docs/configuration.md.",
    )


def _add_retention(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = commands.add_parser(
        "retention",
        help="delete superseded images from the registry (settings: retention)",
        description="Delete the registry's images that the retention settings do not keep "
        "(docs/design-prepull.md); with --dry-run, only list what would be deleted.",
    )
    _add_config_option(retention)
    retention.add_argument("--dry-run", action="store_true", help="delete nothing")
    retention.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_build(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = commands.add_parser(
        "build",
        help="build one repository or record now and print its image name",
        description="Resolve REPO (at REF) to what names its content for good (a git "
        "commit, a record's version, a Mercurial changeset), build and push its image "
        "unless the registry has it already, showing progress. Prints the image name on "
        "standard output. Exit status: 0 when the image exists (built now or before), 1 "
        "when the build failed or a temporary error stopped it, 2 when the request or "
        "the configuration is invalid.",
    )
    _add_config_option(build)
    build.add_argument(
        "repo",
        metavar="REPO",
        help="what to build, in any form of docs/providers.md: a git repository URL "
        "(https://github.com/OWNER/REPO, git://, ssh://, git@HOST:PATH) or shortcut "
        "gh/OWNER/REPO/REF or gl/NAMESPACE/PROJECT/REF; a GitHub, GitLab or Gitea page "
        "(tree, commit, tag, pull request) or a gist; a DOI (10.5281/zenodo.3242074, "
        "doi:10..., https://doi.org/10.7910/DVN/TJCLKP) or a record's page (Zenodo, "
        "Figshare, Dataverse, HydroShare); a CKAN dataset's page "
        "https://demo.ckan.org/dataset/sample-dataset-1 (ckan:URL on a git forge's host); "
        "a Software Heritage SWHID "
        "(swh:1:dir:HASH, swh:1:rev:HASH); a Mercurial repository as "
        "hg+https://HOST/PATH[@REF]",
    )
    build.add_argument(
        "--ref",
        help="with a git URL: a branch, tag or full commit SHA (default: the repository's "
        "HEAD); with a Mercurial URL: a branch, bookmark, tag or changeset (default: "
        "default); none with a record or a page, which names its own version",
    )
    build.add_argument(
        "--force",
        action="store_true",
        help="build even if the last build of this commit or record version failed",
    )


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="binderhub-service", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the HTTP service",
        description="Run the HTTP service: the build API, /health, and the build queue. "
        "Builds that were queued or running when the service last stopped are resumed.",
    )
    _add_config_option(serve)
    serve.add_argument(
        "--listen", metavar="HOST:PORT", help="address to listen on (setting: listen)"
    )

    _add_build(commands)
    _add_retention(commands)

    hooks = commands.add_parser(
        "hooks",
        help="set up push webhooks on GitHub or GitLab",
        description="Create (or update) a repository's push webhook so that it calls "
        "this service at <public_url>hooks/<forge> with the configured secret, using "
        "the forge's token from forges.hosts. Exit status: 0 done, 1 the forge failed, "
        "2 the request or the configuration is incomplete. See docs/forges.md.",
    )
    hook_commands = hooks.add_subparsers(dest="hooks_command", required=True, metavar="ACTION")
    install = hook_commands.add_parser("install", help="create or update the webhook")
    _add_config_option(install)
    install.add_argument("forge", choices=["github", "gitlab"], help="the forge's kind")
    install.add_argument("project", metavar="OWNER/REPO", help="the repository's path")
    install.add_argument(
        "--forge-url", help="which forge of that kind (its url in forges.hosts), if several"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    overrides = {}
    if getattr(args, "listen", None):
        overrides["listen"] = args.listen
    try:
        settings = load_settings(args.config, **overrides)
        if settings.executor == "local" and args.command != "retention":
            check_builder_version(settings)
        if args.command in ("serve", "build"):
            # the database answers, takes our credentials and its schema is current
            open_store(settings).close()
    except ConfigError as e:
        print(f"binderhub-service: {e}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return serve(settings)
    if args.command == "hooks":
        return install_hook(settings, args.forge, args.project, args.forge_url)
    if args.command == "retention":
        return asyncio.run(retention(settings, dry_run=args.dry_run, as_json=args.json))
    configure_logging(settings.log_level, "text")
    return asyncio.run(build(settings, args.repo, args.ref, args.force))


def serve(settings: Settings) -> int:
    import uvicorn

    from .app import create_app

    log_config = configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.listen_host,
        port=settings.listen_port,
        log_level=settings.log_level,
        log_config=log_config,
        access_log=False,
        # open event streams would otherwise hold a shutdown until their builds end
        timeout_graceful_shutdown=10,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )
    return 0


async def retention(settings: Settings, *, dry_run: bool, as_json: bool) -> int:
    """One retention run: 0 when it ran to its end, 1 when it stopped or could not
    plan, 2 when the settings or the registry refuse it."""
    from jobs.retention.setup import retention_once

    try:
        report = await retention_once(settings, dry_run=dry_run)
    except ConfigError as e:
        print(f"binderhub-service: {e}", file=sys.stderr)
        return 2
    except BuildServiceError as e:
        print(f"binderhub-service: retention could not plan, nothing deleted: {e}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.summary()))
    return 1 if report.stopped else 0


def install_hook(settings: Settings, forge: str, project: str, forge_url: str | None) -> int:
    from jobs.forges.errors import ForgeUnavailable
    from jobs.forges.hook_setup import install_hook as install

    try:
        change = install(settings, forge, project, forge_url=forge_url)  # type: ignore[arg-type]
    except InvalidRequest as e:
        print(f"binderhub-service: {e}", file=sys.stderr)
        return 2
    except (BuildServiceError, ForgeUnavailable) as e:
        print(f"binderhub-service: {e}", file=sys.stderr)
        return 1
    print(f"{change.action} webhook {change.id} of {project}: {change.url}")
    return 0


class Progress:
    """A one-build progress display: phase, elapsed time, the last log lines."""

    def __init__(self, out: TextIO, tail: int = 5) -> None:
        self._out = out
        self._tty = out.isatty()
        self._start = time.monotonic()
        self._phase = "waiting"
        self._tail: deque[str] = deque(maxlen=tail)
        self._drawn = 0

    def update(self, phase: str, message: str) -> None:
        if phase:
            self._phase = phase
        for text in message.splitlines():
            if text.strip():
                self._tail.append(text)
                if not self._tty:
                    self._out.write(f"[{self._elapsed()}] {self._phase}: {text}\n")
        if self._tty:
            self._redraw()

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self._start)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def _redraw(self) -> None:
        width = os.get_terminal_size(self._out.fileno()).columns
        lines = [f"{self._phase} {self._elapsed()}"] + [f"  {t}"[:width] for t in self._tail]
        clear = "\x1b[F\x1b[2K" * self._drawn
        self._out.write(clear + "\n".join(lines) + "\n")
        self._drawn = len(lines)
        self._out.flush()


async def build(settings: Settings, repo: str, ref: str | None, force: bool) -> int:
    """Build ``repo`` at ``ref`` in this process, following its ref across supersedes
    (``jobs.coordinator.following.follow``); the exit status of ``binderhub-service
    build``."""
    service = make_service(settings)
    await service.start(recover=False)
    progress = Progress(sys.stderr)
    try:
        request = BuildRequest(repo, ref, trigger="cli", force=force)
        image = ""
        async for item in follow(service, request):
            status: int | None = None
            if isinstance(item, Answered):
                image = item.outcome.image
                status = _answered(service, settings, item.outcome)
            elif isinstance(item, Superseded):
                progress.update("", f"{item.reason}; following the newer build of {item.ref}")
            elif isinstance(item, MovedOn):
                print(f"binderhub-service: {item.message}", file=sys.stderr)
                status = 1
            else:
                progress.update(item.phase, item.message if item.kind == "log" else "")
                status = _finished(item, image)
            if status is not None:
                return status
        return 1
    except BuildServiceError as e:
        print(f"binderhub-service: {e}", file=sys.stderr)
        return 2 if isinstance(e, InvalidRequest) else 1
    finally:
        await service.close(abandon=True)  # sends the last commit status too


def _answered(service: BuildService, settings: Settings, outcome: BuildOutcome) -> int | None:
    """The exit status when the answer ends the command (a cache hit, a remembered
    failure, a build another process runs); None when its build is followed here."""
    if outcome.status == "cached":
        print(f"binderhub-service: {outcome.image} exists already", file=sys.stderr)
        print(outcome.image)
        return 0
    build = outcome.build
    assert build is not None
    if outcome.status == "failed-before":
        until = build.failure_remembered_until(settings.limits.failure_memory) or 0.0
        print(
            f"binderhub-service: the last build of {build.content} failed ({build.error}); "
            f"it is tried again after {retry_time(until)}, or now with --force",
            file=sys.stderr,
        )
        return 1
    if outcome.status == "joined" and service.get(build.id) is not build:
        print(
            f"binderhub-service: {build.image} is being built by another process "
            f"(build {build.id}); follow it there",
            file=sys.stderr,
        )
        return 1
    return None


def _finished(event: BuildEvent, image: str) -> int | None:
    """The exit status once ``event`` is the build's last state (``image`` printed when
    it is built); None before."""
    if event.kind != "state" or event.state is None or not BuildState(event.state).finished:
        return None
    if event.state == BuildState.BUILT:
        print(image)
        return 0
    print(f"binderhub-service: build {event.state}: {event.message}", file=sys.stderr)
    return 1
