"""Wire the pipeline's parts together from settings."""

from __future__ import annotations

from importlib import metadata

from .executors import Executor
from .refs import RefResolver
from .registry import RegistryClient, credentials_from_docker_config
from .service import BuildService
from .settings import ConfigError, Settings
from .store import Store


def make_registry_client(settings: Settings) -> RegistryClient:
    registry = settings.registry
    credentials: tuple[str, str] | None = None
    if registry.username and registry.password:
        credentials = (registry.username, registry.password.get_secret_value())
    elif registry.docker_config:
        credentials = credentials_from_docker_config(registry.docker_config, settings.registry_host)
    return RegistryClient(
        settings.registry_url,
        credentials=credentials,
        timeout=registry.timeout,
        cache_seconds=registry.cache_seconds,
    )


def check_builder_version(settings: Settings) -> None:
    """Refuse to start when the repo2docker the local executor would run is not the
    version the settings name (only checkable for the one installed with us)."""
    if settings.repo2docker.command is not None:
        return
    try:
        installed = metadata.version("jupyter-repo2docker")
    except metadata.PackageNotFoundError:
        raise ConfigError("repo2docker is not installed next to binderhub-service") from None
    if installed != settings.repo2docker.version:
        raise ConfigError(
            f"repo2docker.version is {settings.repo2docker.version} but the installed "
            f"repo2docker is {installed}; change the setting or install that version"
        )


def make_executor(settings: Settings) -> Executor:
    if settings.executor == "local":
        from .executors.local import LocalExecutor

        check_builder_version(settings)
        return LocalExecutor(settings)
    raise AssertionError(f"unknown executor {settings.executor!r}")  # settings forbid it


def make_service(settings: Settings) -> BuildService:
    return BuildService(
        settings,
        store=Store(settings.state_path),
        registry=make_registry_client(settings),
        resolver=RefResolver(
            timeout=settings.git_timeout,
            ttl=settings.ref_cache_seconds,
            allow_file=settings.allow_file_urls,
        ),
        executor=make_executor(settings),
    )
