"""Builds as repo2docker subprocesses on this machine (the embedded default).

Each build is its own process group, so cancel and timeout stop repo2docker and
anything it started. The child is told to die with the service (``PR_SET_PDEATHSIG``):
after a crash the build is run again from the store, never left running unseen.
Each build runs in a working directory of its own (``workdirs.py``), removed however
the build ends; output is read in chunks and cut into bounded lines
(``jobs/repo2docker/log_lines.py``), so no output can fail a build. The lines tell which phase the
build is in (``jobs/repo2docker/phases.py``): a phase that runs past its deadline stops the build,
as ``limits.build_timeout`` does for the whole. repo2docker gets an allow-listed
environment and only its own credential files (``build_config.py``, issue 20).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import inspect
import os
import signal
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ...checks import Check
from ...errors import BuildFailed, RegistryAuthError
from ...model import Build, LogLine
from ...repo2docker.command import (
    CONTENT_PROVIDER_CONFIG,
    buildkit_environment,
    buildx_args,
    proxy_environment,
    record_config,
    repo2docker_args,
    repo2docker_config,
)
from ...repo2docker.failures import TAIL_LINES, classify_failure
from ...repo2docker.log_lines import LineSplitter, RawLine, log_line_from_raw
from ...repo2docker.phases import Expired, PhaseTracker
from ...settings import Settings
from ...sources.git_policy import git_policy, provider_git_config, with_git_config
from ...sources.records import CONTENT_PROVIDER_CLASSES, REF_PROVIDERS, record_content
from ...trust import Trust
from ..base import Executor
from ..daemons import ping_buildkit, ping_docker
from .build_config import allowed_environment, write_build_files, write_hg_config
from .docker_cleanup import clean_up_after_build
from .workdirs import WorkDir, WorkDirBusy, WorkDirs

BUILD_ID_ENV = "BINDERHUB_SERVICE_BUILD_ID"
_PR_SET_PDEATHSIG = 1
_KILL_GRACE_SECONDS = 10.0
_READ_CHUNK = 64 * 1024
CHECK_TIMEOUT_SECONDS = 2.0
CLEANUP_TIMEOUT_SECONDS = 300.0
"""Per Engine API request of the clean-up after a build (a prune of many GB takes a while)."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _runs_build(pid: int, build_id: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{BUILD_ID_ENV}={build_id}".encode() in environ.split(b"\0")


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def build_processes(group: int, build_id: str) -> tuple[bool, list[int]]:
    """Processes left of a build whose process group was ``group``.

    Returns whether the group leader (repo2docker itself) is alive, and the pids in
    the group that carry the build's id in their environment (so a reused pid or
    group id is never taken for ours).
    """
    members = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and _process_group(int(entry.name)) == group
        and _runs_build(int(entry.name), build_id)
    ]
    return group in members, members


OWN_PROVIDERS = "binderhub_service_builder."
"""The package of builder/'s content providers, whose source a build's configuration
file carries (``provider_source``)."""


def provider_source(provider_class: str) -> str | None:
    """The source of ``provider_class``'s module when it is a content provider of
    builder/ (written into the build's configuration file, so that the repo2docker of
    ``repo2docker.command``, in another virtualenv perhaps, runs it without the
    package), else None (repo2docker's own, imported by name). Raises ``BuildFailed``
    (not remembered: the service's installation, not the record) when builder/ is not
    installed next to the service."""
    module = provider_class.rpartition(".")[0]
    if not module.startswith(OWN_PROVIDERS):
        return None
    try:
        return inspect.getsource(importlib.import_module(module))
    except (ImportError, OSError) as e:
        raise BuildFailed(
            f"cannot read the content provider {provider_class}: {e} "
            "(install binderhub-service-builder next to the service)",
            remember=False,
        ) from e


class LocalExecutor(Executor):
    backend = "docker"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._cancelled: set[str] = set()
        state_dir = settings.state_path.resolve().parent
        state_dir.mkdir(parents=True, exist_ok=True)
        self._state_dir = state_dir
        self._buildx = settings.repo2docker.uses_buildx
        self._config_file = state_dir / "repo2docker_config.py"
        self._config_file.write_text(CONTENT_PROVIDER_CONFIG, encoding="utf-8")
        self._trust = Trust(self._settings.ca_bundle, self._state_dir)
        self._env = self._environment()
        self.workdirs = WorkDirs(state_dir / "builds")

    def _environment(self) -> dict[str, str]:
        """What every build gets of the service's environment: the allow-list of
        ``build_config`` (no setting, secret or token) with repo2docker's own directory
        first on PATH, git's policy and ``providers.proxy`` for gists
        (``provider_git_config``), the CA bundle, and the BuildKit daemon's address;
        each build adds its own files (``_build_files``)."""
        env = allowed_environment(os.environ)
        # the tools installed beside repo2docker come first (hg, which its Mercurial
        # content provider runs by name)
        program = Path((self._settings.repo2docker.command or [sys.executable])[0])
        if program.is_absolute():
            env["PATH"] = os.pathsep.join([str(program.parent), env.get("PATH", os.defpath)])
        env.update(git_policy(self._settings.allow_file_urls))
        # a gist is cloned through providers.proxy, as records are fetched
        env = with_git_config(env, provider_git_config(self._settings.providers.proxy))
        # ca_bundle: the public authorities and the bundle's, in one file (jobs.trust)
        env.update(self._trust.git_env())
        if self._buildx:
            env.update(buildkit_environment(self._settings.buildkit))
        return env

    def command_for(self, build: Build, config_file: Path | None = None) -> list[str]:
        """The repo2docker command line of ``build``; ``config_file`` defaults to the
        one written at start-up (without the build's cache settings). A record's build
        is handed the version it is named after (``record_content``), never the record
        as asked, and no ref but a Mercurial changeset (``REF_PROVIDERS``)."""
        command = self._settings.repo2docker.command or [sys.executable, "-m", "repo2docker"]
        if build.provider == "git":
            repo, sha = self._settings.fetch_url(build.repo), build.sha  # a mirror's, if any
        elif build.provider in REF_PROVIDERS:  # a repository at a changeset
            repo, sha = record_content(build.provider, build.repo, build.sha), build.sha
        else:
            repo, sha = record_content(build.provider, build.repo, build.sha), None
        return [
            *command,
            *repo2docker_args(
                self._settings.repo2docker,
                image=build.image,
                repo=repo,
                sha=sha,
                config_file=str(config_file or self._config_file),
            ),
        ]

    def _build_files(self, workdir: WorkDir, build: Build) -> tuple[Path, dict[str, str]]:
        """The build's repo2docker configuration file and the environment to add: its own
        files in its working directory (``build_config.write_build_files``: a writable
        DOCKER_CONFIG with the push credentials as the settings hold them now, a rotated
        file read again; the git credential of its repository only; its HOME); from
        2025.8 on, a configuration file of its own with its registry cache. Raises
        ``RegistryAuthError`` (temporary: the build is tried again later) when the
        credentials cannot be read."""
        try:
            git_repo = build.repo if build.provider == "git" else None  # no git credential
            env = write_build_files(workdir.path, self._settings, git_repo)
        except RegistryAuthError as e:
            raise RegistryAuthError(f"no registry credentials for the push: {e}") from e
        record = build.provider != "git"
        if record:
            env.update(proxy_environment(self._settings.providers.proxy))
        if build.provider == "hg":  # hg trusts certifi's authorities, not SSL_CERT_FILE
            write_hg_config(Path(env["HOME"]), self._trust.bundle_file)
        if not (self._buildx or record):
            return self._config_file, env
        config_file = workdir.path / "repo2docker_config.py"
        extra = buildx_args(self._settings.buildkit, build.image) if self._buildx else []
        if record:
            provider_class = CONTENT_PROVIDER_CLASSES.get(build.provider)  # type: ignore[call-overload]
            if provider_class is None:
                raise BuildFailed(f"{build.provider} records cannot be built", remember=False)
            text = record_config(provider_class, extra, provider_source(provider_class))
        else:
            text = repo2docker_config(extra)
        config_file.write_text(text, encoding="utf-8")
        return config_file, env

    async def run(
        self,
        build: Build,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
        *,
        resume_lines: int = 0,
    ) -> None:
        if build.id in self._cancelled:
            self._cancelled.discard(build.id)
            raise BuildFailed("cancelled before it started", remember=False)
        await self.check()  # a daemon that is not there: tried again later, not failed
        try:
            workdir = await self.workdirs.claim(build.id)
        except (WorkDirBusy, OSError) as e:
            self._cancelled.discard(build.id)
            raise BuildFailed(f"no working directory: {e}", remember=False) from e
        try:
            await self._run_in(workdir, build, on_log, on_start)
        finally:
            await self.workdirs.release(workdir)
            if self._builds_on_docker():
                await self._clean_up_docker(build)

    def _builds_on_docker(self) -> bool:
        """Whether builds run in the Docker daemon (no ``buildkit.host`` of their own),
        which keeps their images and build cache on this host."""
        return not (self._buildx and self._settings.buildkit.host)

    async def _clean_up_docker(self, build: Build) -> None:
        """Remove the build's image from the Docker daemon (pushed: the registry is the
        cache) and bound its build cache (``local.docker_build_cache_bytes``); failures
        are logged (``docker_cleanup``), never raised."""
        keep = self._settings.local.docker_build_cache_bytes
        await clean_up_after_build(self._env, build.image, keep, CLEANUP_TIMEOUT_SECONDS)

    async def _run_in(
        self,
        workdir: WorkDir,
        build: Build,
        on_log: Callable[[LogLine], None],
        on_start: Callable[[int | None], None],
    ) -> None:
        timeout = self._settings.limits.build_timeout
        try:
            config_file, build_env = self._build_files(workdir, build)
            proc = await asyncio.create_subprocess_exec(
                *self.command_for(build, config_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                env={**self._env, **build_env, BUILD_ID_ENV: build.id, "TMPDIR": str(workdir.tmp)},
                cwd=workdir.path,
            )
        except (OSError, ValueError) as e:
            raise BuildFailed(f"cannot start repo2docker: {e}", remember=False) from e
        self._procs[build.id] = proc
        on_start(proc.pid)
        tail: deque[LogLine] = deque(maxlen=TAIL_LINES)  # for classify_failure
        clock = asyncio.get_running_loop().time
        phases = PhaseTracker(start=clock())

        def deliver(raw: RawLine) -> None:
            line = log_line_from_raw(raw)
            if line is None:
                return
            phases.feed(line, clock())
            tail.append(line)
            on_log(line)

        try:
            if build.id in self._cancelled:  # cancelled while the process was starting
                await self._stop(proc)
            ended = await self._follow(proc, deliver, phases, phases.start + timeout)
        except TimeoutError:
            raise BuildFailed(f"build timed out after {timeout:g} seconds") from None
        finally:
            self._procs.pop(build.id, None)
            self._cancelled.discard(build.id)
            if proc.returncode is None:
                await self._stop(proc)
        if isinstance(ended, Expired):  # stopped above; the service asks the registry
            raise BuildFailed(ended.message, remember=False)
        if ended != 0:
            failure = classify_failure(ended, tail, build.image)
            raise BuildFailed(failure.message, remember=failure.remember)

    async def _follow(
        self,
        proc: asyncio.subprocess.Process,
        deliver: Callable[[RawLine], None],
        phases: PhaseTracker,
        deadline: float,
    ) -> int | Expired:
        """Read ``proc``'s output to its end, line by line into ``deliver``, and return
        its exit code; or the phase that ran past its limit (``jobs.phases``; the process
        is left running). Raises TimeoutError at ``deadline`` (the loop's time)."""
        limits = self._settings.limits.phase_timeouts
        clock = asyncio.get_running_loop().time
        assert proc.stdout is not None
        splitter = LineSplitter()
        while True:
            try:
                # a cancelled read loses nothing: what arrives stays in the stream's buffer
                async with asyncio.timeout_at(min(deadline, phases.deadline(limits))):
                    chunk = await proc.stdout.read(_READ_CHUNK)
            except TimeoutError:
                if clock() >= deadline:
                    raise
                expired = phases.expired(limits, clock())
                if expired is not None:
                    return expired
                continue
            if not chunk:
                break
            for raw in splitter.feed(chunk):
                deliver(raw)
        rest = splitter.end()
        if rest is not None:
            deliver(rest)
        async with asyncio.timeout_at(deadline):
            return await proc.wait()

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), _KILL_GRACE_SECONDS)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def cancel(self, build: Build) -> None:
        # Remembered until ``run`` ends, so that a cancel that arrives before the
        # process exists is not lost.
        self._cancelled.add(build.id)
        proc = self._procs.get(build.id)
        if proc is not None and proc.returncode is None:
            await self._stop(proc)

    async def recover(self, build: Build) -> bool:
        if not build.pid:
            return False
        leader_alive, members = build_processes(build.pid, build.id)
        if leader_alive:
            # repo2docker is alive, so its parent is too (it dies with its parent):
            # another process, such as `binderhub-service build`, runs this build.
            return True
        for pid in members:  # what repo2docker started and left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return False

    async def sweep(self) -> None:
        """Remove what builds that no live process runs left behind (at start-up,
        after ``recover`` stopped their leftover processes)."""
        await self.workdirs.sweep()

    async def check(self) -> None:
        """The BuildKit daemon builds use (``buildkit.host``) accepts connections; without
        one, the Docker daemon repo2docker would use (its ``DOCKER_HOST``) answers.
        Raises ``TemporaryError`` naming the one that does not."""
        for check in self.checks().values():
            await check()

    def checks(self) -> dict[str, Check]:
        """``buildkit`` when builds use a BuildKit daemon of their own (repo2docker
        2025.8 and later with ``buildkit.host``), else ``docker``."""
        host = self._settings.buildkit.host
        if not self._builds_on_docker() and host:
            return {"buildkit": lambda: ping_buildkit(host, CHECK_TIMEOUT_SECONDS)}
        return {"docker": lambda: ping_docker(self._env, CHECK_TIMEOUT_SECONDS)}

    async def close(self) -> None:
        for proc in list(self._procs.values()):
            if proc.returncode is None:
                await self._stop(proc)
