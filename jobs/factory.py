"""Wire the pipeline's parts together from settings."""

from __future__ import annotations

from .executors import Executor
from .refs import RefResolver
from .registry import RegistryClient, credentials_from_docker_config
from .service import BuildService
from .settings import Settings
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


def make_executor(settings: Settings) -> Executor:
    if settings.executor == "local":
        from .executors.local import LocalExecutor

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
