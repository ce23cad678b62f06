"""The service's settings: one typed, frozen object, loaded once from a YAML file and
the environment (``load_settings``), checked when it loads (``ConfigError`` names
every offending key).

Everything is imported from here (``from jobs.settings import Settings``).
``root``: ``Settings`` (the top-level keys) and ``load_settings``; ``sections``: one
model per section. ``docs`` and ``schema`` render docs/configuration.md and the chart's
values schema from them (``python -m jobs.settings.docs``, ``python -m
jobs.settings.schema``).
"""

from .root import CONFIG_ENV, ENV_PREFIX, Settings, format_validation_error, load_settings
from .sections import (
    ApiTokenSettings,
    AuthSettings,
    BuildKitSettings,
    BuildLogSettings,
    ConfigError,
    ForgeHostSettings,
    ForgeSettings,
    GitCredentialSettings,
    HubProfileSettings,
    JupyterHubSettings,
    KubernetesSettings,
    LimitSettings,
    PhaseTimeouts,
    QuotaLimits,
    QuotaSettings,
    RegistrySettings,
    Repo2DockerSettings,
    RepoSettings,
    SecretKeyRef,
    WebhookSettings,
)

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "ApiTokenSettings",
    "AuthSettings",
    "BuildKitSettings",
    "BuildLogSettings",
    "ConfigError",
    "ForgeHostSettings",
    "ForgeSettings",
    "GitCredentialSettings",
    "HubProfileSettings",
    "JupyterHubSettings",
    "KubernetesSettings",
    "LimitSettings",
    "PhaseTimeouts",
    "QuotaLimits",
    "QuotaSettings",
    "RegistrySettings",
    "Repo2DockerSettings",
    "RepoSettings",
    "SecretKeyRef",
    "Settings",
    "WebhookSettings",
    "format_validation_error",
    "load_settings",
]
