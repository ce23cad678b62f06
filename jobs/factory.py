"""Wire the pipeline's parts together from settings."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from importlib import metadata
from typing import TypeVar, overload

import httpx

from .coordinator.quotas import ClusterCounter, QuotaCounter, Quotas, StoreCounter
from .coordinator.record_intake import check_record
from .coordinator.retries import RetryPolicy
from .executors import DurableExecutor, Executor
from .forges.hosts import Forges
from .forges.status import DRAIN_SECONDS, attach_status_reporter
from .registry.auth import DockerConfigCredentials
from .registry.client import Credentials, Registry, RegistryClient
from .service import BuildService
from .settings import ConfigError, Settings
from .sources.git_policy import provider_git_config, with_git_config
from .sources.hg_identify import HgEgress
from .sources.record_apis import RecordResolver
from .sources.record_cache import RecordCache
from .sources.record_hosts import check_record_host
from .sources.refs import RefResolver
from .store import Store, open_store
from .trust import Trust

Client = TypeVar("Client", bound=RegistryClient)


@overload
def make_registry_client(settings: Settings, *, trust: Trust | None = None) -> RegistryClient: ...
@overload
def make_registry_client(
    settings: Settings, kind: type[Client], *, trust: Trust | None = None
) -> Client: ...
def make_registry_client(
    settings: Settings,
    kind: type[RegistryClient] = RegistryClient,
    *,
    trust: Trust | None = None,
) -> RegistryClient:
    """The registry client (or ``kind``, e.g. retention's ``RegistryAdmin``) of the one
    credential setting: ``username``/``password``, or ``docker_config``, read again
    whenever the file changes (rotated tokens); trusting ``trust``'s authorities
    (default: ``Trust(settings.ca_bundle)``), so that every kind trusts ``ca_bundle``."""
    registry = settings.registry
    credentials: Credentials | DockerConfigCredentials = None
    if registry.username and registry.password:
        credentials = (registry.username, registry.password.get_secret_value())
    elif registry.docker_config:
        credentials = DockerConfigCredentials(registry.docker_config, settings.registry_host)
    return kind(
        settings.registry_url,
        credentials=credentials,
        timeout=registry.timeout,
        cache_seconds=registry.cache_seconds,
        verify=(trust or Trust(settings.ca_bundle)).ssl_context(),
    )


VERSION_TIMEOUT_SECONDS = 60.0
"""How long ``repo2docker.command --version`` may take (it imports repo2docker)."""


def _same_version(a: str, b: str) -> bool:
    """``2024.07.0`` (what repo2docker --version prints) is ``2024.7.0`` (its
    package version)."""

    def numbers(version: str) -> list[int]:
        return [int(part) for part in re.findall(r"\d+", version)]

    return numbers(a) == numbers(b)


def _command_version(command: list[str]) -> str:
    try:
        result = subprocess.run(
            [*command, "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"repo2docker.command {command} cannot be run: {e}") from None
    lines = (result.stdout or result.stderr).strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ConfigError(
            f"repo2docker.command {command} --version failed (exit {result.returncode})"
        )
    return lines[-1].strip()


def check_builder_version(settings: Settings) -> None:
    """Refuse to start when the repo2docker the local executor would run is not the
    version the settings name: the one installed with us, or what
    ``repo2docker.command --version`` prints. Raises ``ConfigError``."""
    command = settings.repo2docker.command
    if command is not None:
        installed = _command_version(command)
        where = f"repo2docker.command {command} is"
    else:
        try:
            installed = metadata.version("jupyter-repo2docker")
        except metadata.PackageNotFoundError:
            raise ConfigError("repo2docker is not installed next to binderhub-service") from None
        where = "the installed repo2docker is"
    if not _same_version(installed, settings.repo2docker.version):
        raise ConfigError(
            f"repo2docker.version is {settings.repo2docker.version} but {where} "
            f"{installed}; change the setting or install that version"
        )


def check_builder_image(settings: Settings) -> None:
    """Refuse to start the kubernetes executor without a builder image: a service that was
    not released has no default one (``jobs/release.py``). Raises ``ConfigError``."""
    if not settings.kubernetes.builder_image.strip():
        raise ConfigError(
            "kubernetes.builder_image is not set, and this service was not released with one: "
            "name an image built from images/repo2docker/Dockerfile (`make release "
            "REGISTRY=... VERSION=...` builds and pushes it with the service's image; the "
            "Helm chart sets it)"
        )


def make_executor(settings: Settings, registry: Registry | None = None) -> Executor:
    """The executor the settings name. A Kubernetes one lets builds start only while
    ``registry`` answers (its queue holds them meanwhile: ``executors.kubernetes.queue_keeper``)."""
    if settings.executor == "local":
        from .executors.local.executor import LocalExecutor

        check_builder_version(settings)
        return LocalExecutor(settings)
    if settings.executor == "kubernetes":
        from .executors.kubernetes.executor import KubernetesExecutor

        check_builder_image(settings)
        needs = {} if registry is None else {"registry": registry.check}
        return KubernetesExecutor(settings, needs=needs)
    raise AssertionError(f"unknown executor {settings.executor!r}")  # settings forbid it


STATUS_DRAIN_SECONDS = DRAIN_SECONDS
"""How long a stopping process waits for its last commit statuses (``BuildService.close``)."""


def make_quotas(settings: Settings, store: Store, executor: Executor) -> Quotas:
    """Quotas counted where every process sees the same builds: the cluster's Jobs
    for a durable executor, else the build records."""
    counter: QuotaCounter = (
        ClusterCounter(executor.counted_builds)
        if isinstance(executor, DurableExecutor)
        else StoreCounter(store)
    )
    return Quotas(settings.quotas, counter)


def make_records(settings: Settings, trust: Trust) -> tuple[RecordCache, httpx.AsyncClient]:
    """The record resolutions of the intake (issue 25): a ``RecordCache`` (moving
    resolutions kept ``providers.cache_seconds``) over a ``RecordResolver`` that checks
    the record a DOI leads to (``check_record``: ``allowed_repos``, a provider that
    builds) before its host is asked, refuses a host a user names that is an address or
    resolves to an internal one (``check_record_host``), and refuses records over
    ``providers.max_record_bytes``; and its one HTTP client (``providers.timeout`` per
    request, ``providers.proxy`` or the environment's, trusting ``ca_bundle``), which the
    caller closes. Mercurial refs are resolved by ``hg identify`` through the same proxy
    and authorities (``HgEgress``)."""
    providers = settings.providers
    client = httpx.AsyncClient(
        proxy=providers.proxy, verify=trust.ssl_context(), timeout=providers.timeout
    )
    resolver = RecordResolver(
        client,
        max_record_bytes=providers.max_record_bytes,
        check=lambda record: check_record(settings.allowed_repos, record),
        check_host=lambda record: check_record_host(
            record, settings.allowed_repos, proxy=providers.proxy
        ),
        hg=HgEgress(proxy=providers.proxy, cacerts=trust.bundle_file),
    )
    return RecordCache(resolver, ttl=providers.cache_seconds), client


def make_service(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    store: Store | None = None,
    retry: RetryPolicy | None = None,
) -> BuildService:
    """The service the settings describe; ``clock`` (epoch seconds) stamps its records.
    ``store``: one opened already (``jobs.store.open_store``), else it is opened here
    (raises ``ConfigError`` when it cannot be). ``retry`` says how builds are tried again
    after temporary failures (``jobs.coordinator.retries``: its defaults unless given)."""
    trust = Trust(settings.ca_bundle)
    forges = Forges.from_settings(
        settings.forges, fetch=settings.fetch_url, verify=trust.requests_verify()
    )
    if store is None:
        store = open_store(settings)
    registry = make_registry_client(settings, trust=trust)
    executor = make_executor(settings, registry)
    records, records_client = make_records(settings, trust)
    service = BuildService(
        settings,
        store=store,
        registry=registry,
        resolver=RefResolver(
            timeout=settings.git_timeout,
            ttl=settings.ref_cache_seconds,
            allow_file=settings.allow_file_urls,
            forge=forges,
            git_env=with_git_config(
                {**forges.git_environment(), **trust.git_env()},
                provider_git_config(settings.providers.proxy),
            ),
            fetch=settings.fetch_url,
        ),
        executor=executor,
        quotas=make_quotas(settings, store, executor),
        clock=clock,
        retry=retry,
        records=records,
    )
    service.closing.append(records_client.aclose)
    service.status_reporter = attach_status_reporter(
        service.events.add_listener,
        forges,
        service.get,
        context=settings.forges.status_context,
        public_url=settings.public_url,
    )
    if settings.prepull.enabled:
        from .prepull.keeper import PrepullKeeper

        service.prepull = PrepullKeeper.from_settings(settings, service.catalog)
        service.events.add_listener(service.prepull.on_event)
    return service


async def drain_statuses(service: BuildService, within: float = STATUS_DRAIN_SECONDS) -> int:
    """Wait until the commit statuses of ``service``'s builds are sent or given up on,
        at most ``within`` seconds. Returns how many builds' last statuses were dropped
        (logged and counted by the reporter). ``service.close()`` does it too; tests call it
    to wait for the statuses of builds that have ended."""
    reporter = service.status_reporter
    return 0 if reporter is None else await reporter.drain(within)
