"""The service's settings: one typed, frozen object, loaded once from a YAML file and
the environment (``load_settings``), checked when it loads (``ConfigError`` names
every offending key).

Everything is imported from here (``from jobs.settings import Settings``).
``root``: ``Settings`` (the top-level keys) and ``load_settings``; one module per
group of sections (``registry``, ``building``, ``limits``, ``kubernetes``, ``pushes``,
``forges``, ``auth``, ``jupyterhub``, ``database``, ``providers``), each model a key of
the file; ``base``: what
they share. ``docs`` and ``schema`` render docs/configuration.md and the chart's
values schema from them (``python -m jobs.settings.docs``, ``python -m
jobs.settings.schema``).
"""

from .auth import ApiTokenSettings, AuthSettings
from .base import ConfigError, Section
from .building import BuildKitSettings, LocalSettings, Repo2DockerSettings
from .database import DatabaseSettings
from .forges import ForgeHostSettings, ForgeSettings, GitCredentialSettings
from .jupyterhub import HubProfileSettings, JupyterHubSettings
from .kubernetes import KubernetesSettings, SecretKeyRef
from .limits import BuildLogSettings, LimitSettings, PhaseTimeouts, QuotaLimits, QuotaSettings
from .prepull import PrepullSettings
from .providers import ProviderSettings
from .pushes import RepoSettings, WebhookSettings
from .registry import RegistrySettings
from .root import CONFIG_ENV, ENV_PREFIX, Settings, format_validation_error, load_settings

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "ApiTokenSettings",
    "AuthSettings",
    "BuildKitSettings",
    "BuildLogSettings",
    "ConfigError",
    "DatabaseSettings",
    "ForgeHostSettings",
    "ForgeSettings",
    "GitCredentialSettings",
    "HubProfileSettings",
    "JupyterHubSettings",
    "KubernetesSettings",
    "LimitSettings",
    "LocalSettings",
    "PhaseTimeouts",
    "PrepullSettings",
    "ProviderSettings",
    "QuotaLimits",
    "QuotaSettings",
    "RegistrySettings",
    "Repo2DockerSettings",
    "RepoSettings",
    "SecretKeyRef",
    "Section",
    "Settings",
    "WebhookSettings",
    "format_validation_error",
    "load_settings",
]
