"""One typed settings object, loaded once from a YAML file and the environment.

Precedence: environment variables (``BINDERHUB_SERVICE_<FIELD>``, nested with ``__``,
e.g. ``BINDERHUB_SERVICE_REGISTRY__PASSWORD``) over the YAML file over the defaults.
Unknown keys in the file are errors that name the key: a misspelt setting that is
silently ignored is worse than a refusal to start. Secrets are ``SecretStr``: their
repr and str are masked, so logging a settings object leaks nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..errors import InvalidRequest
from ..sources.mirrors import fetch_url
from ..sources.patterns import canonical_pattern
from ..trust import read_ca_bundle
from .auth import AuthSettings
from .base import ConfigError
from .building import BuildKitSettings, LocalSettings, Repo2DockerSettings
from .database import DatabaseSettings
from .forges import ForgeSettings, MirrorSettings
from .jupyterhub import HubProfileSettings, JupyterHubSettings
from .kubernetes import KubernetesSettings
from .limits import BuildLogSettings, LimitSettings, QuotaSettings
from .prepull import PrepullSettings
from .providers import ProviderSettings
from .pushes import RepoSettings, WebhookSettings
from .registry import RegistrySettings
from .retention import RetentionSettings

ENV_PREFIX = "BINDERHUB_SERVICE_"
CONFIG_ENV = "BINDERHUB_SERVICE_CONFIG"


_BASE_PATH = re.compile(r"/([^/?#\s]+/)*")


class Settings(BaseSettings):
    """Everything the service can be told. See docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    listen: str = "127.0.0.1:8080"
    """Address the HTTP server listens on, ``HOST:PORT``."""

    public_url: str | None = None
    """URL at which people reach this service, e.g.
    ``https://hub.example.org/services/binder/``; used for links to builds (forge
    statuses, JupyterHub). Default: links are left out."""

    image_prefix: str = "127.0.0.1:5000/binder-"
    """Prepended to the repository slug to name images:
    ``<image_prefix><slug>:<commit>``. Includes the registry host."""

    executor: Literal["local", "kubernetes"] = "local"
    """Where builds run. ``local``: a repo2docker subprocess on this machine.
    ``kubernetes``: a Job per build, queued in the cluster (see ``kubernetes``)."""

    state_path: Path = Path("binderhub-service.sqlite")
    """SQLite file holding build records, their logs and webhook delivery records
    (created if missing), unless ``database.url`` names another place. The local
    executor's working directories are made beside it."""

    database: DatabaseSettings = DatabaseSettings()
    """Where the state is kept: this host's SQLite file (``state_path``) by default, or a
    PostgreSQL database that several replicas share (docs/helm.md)."""

    allowed_repos: list[str] = ["*"]
    """Shell-style patterns (``fnmatch``) of canonical repository URLs that may be
    built, e.g. ``https://github.com/my-org/*``. The default admits every repository.
    ``*`` matches any characters, ``/`` included: ``https://gitlab.com/group/*`` admits
    projects in subgroups too. Canonical URLs have no ``..``, escaped ``/`` or other
    spelling that git or a server would read as another path, so a URL under a
    pattern's path is a repository under that path. In a pattern with ``scheme://``,
    wildcards in the host part match within the host only. Patterns are spelled as
    canonical URLs when the settings load (host in lower case, no default port, no
    trailing ``/`` or ``.git``, the path in lower case on github.com and gitlab.com);
    a pattern with a scheme needs a path (``https://host/*``, not ``https://host``).
    Records of content providers (issue 25) are matched by patterns of their own, kept as
    written: ``zenodo:*``, ``figshare:*``, ``zenodo:zenodo.org/3242074``, ``doi:10.5281/*``
    (a record's page URL is matched too); ``*`` admits them all. A Dataverse or CKAN
    host (any host a user names) that is an IP address or resolves to a loopback,
    link-local or private address is asked only when a pattern names it:
    ``ckan:data.internal.example/*``."""

    allow_file_urls: bool = False
    """Admit ``file://`` repository URLs (for local testing only)."""

    git_timeout: float = Field(default=20.0, gt=0)
    """Seconds ``git ls-remote`` may take to resolve a ref."""

    ref_cache_seconds: float = Field(default=30.0, ge=0)
    """How long a resolved branch or tag is trusted before it is resolved again. Push
    webhooks refresh it at once."""

    registry: RegistrySettings = RegistrySettings()
    """The registry images are pushed to and looked up in. Whether an image exists is
    asked with a manifest HEAD: 404 means missing, and so does a 401
    `insufficient_scope` to a token the registry's token service issued (Docker Hub
    answers so for a repository that does not exist yet). A refused token exchange or
    Basic login is an error naming the credentials; any other answer is an error,
    never "missing"."""

    retention: RetentionSettings = RetentionSettings()
    """What ``binderhub-service retention`` keeps in the registry, and deletes
    (docs/design-prepull.md)."""

    prepull: PrepullSettings = PrepullSettings()
    """The images the catalog offers, pulled onto the user nodes before anyone spawns
    (docs/design-prepull.md)."""

    repo2docker: Repo2DockerSettings = Repo2DockerSettings()
    """How repo2docker is run."""

    buildkit: BuildKitSettings = BuildKitSettings()
    """The BuildKit daemon and registry cache of local builds with repo2docker 2025.8+
    (docs/local-mode.md)."""

    local: LocalSettings = LocalSettings()
    """What local builds on the Docker daemon leave on the host's disk."""

    limits: LimitSettings = LimitSettings()
    """Concurrency and time limits for builds."""

    providers: ProviderSettings = ProviderSettings()
    """Records of content providers (Zenodo): their size limit, how long a resolution
    is trusted, and the proxy that reaches them (docs/design-providers.md)."""

    build_logs: BuildLogSettings = BuildLogSettings()
    """How much of each build's log is stored, and for how long."""

    quotas: QuotaSettings = QuotaSettings()
    """Fair use of on-demand builds: per requester and per repository (issue 16).
    Off by default. See docs/jupyterhub-auth.md."""

    kubernetes: KubernetesSettings = KubernetesSettings()
    """The ``kubernetes`` executor: where and how build Jobs run."""

    repos: list[RepoSettings] = []
    """Repositories whose push webhooks build, with the branches and tags that do."""

    webhooks: WebhookSettings = WebhookSettings()
    """GitHub and GitLab push webhooks."""

    forges: ForgeSettings = ForgeSettings()
    """GitHub and GitLab APIs (ref resolution, commit statuses, webhook setup) and git
    credentials for private repositories. See docs/forges.md."""

    mirrors: list[MirrorSettings] = []
    """Where repositories are fetched from, by URL prefix: GitHub Enterprise, an
    internal mirror or an air-gapped copy of ``https://github.com/...``. The longest
    matching ``prefix`` wins. See docs/forges.md."""

    ca_bundle: Path | None = None
    """A PEM file of certificate authorities this service trusts besides the public
    ones (an institution's, which signs a registry, a git server, a forge or an
    intercepting proxy): for its registry checks, ``git ls-remote``, forge API calls and
    local builds. The service refuses to start when the file cannot be read or holds no
    certificate. Build pods get theirs from ``kubernetes.ca_bundle``."""

    auth: AuthSettings = AuthSettings()
    """Who may use the API and the BinderHub-compatible build stream."""

    jupyterhub: JupyterHubSettings = JupyterHubSettings()
    """Running behind JupyterHub: hub tokens, OAuth login, who may build."""

    hub_profiles: HubProfileSettings = HubProfileSettings()
    """The KubeSpawner ``profile_list`` that ``GET /api/v1/profiles`` answers for the
    hub's spawn page (docs/launching.md)."""

    base_path: str | None = None
    """Path prefix of every route, e.g. ``/services/binder/`` behind the hub's proxy
    (which passes the prefix on); a missing leading or trailing ``/`` is added.
    Default: ``$JUPYTERHUB_SERVICE_PREFIX`` with ``jupyterhub.enabled``, else ``/``."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level of log records written."""

    log_format: Literal["json", "text"] = "json"
    """``json``: one JSON object per line, with the request id (for log collectors);
    ``text``: plain lines for people. ``binderhub-service build`` always writes text."""

    @field_validator("allowed_repos")
    @classmethod
    def _canonical_patterns(cls, value: list[str]) -> list[str]:
        try:
            return [canonical_pattern(pattern) for pattern in value]
        except InvalidRequest as e:
            raise ValueError(str(e)) from None

    @field_validator("ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_ca_bundle(value)  # raises ValueError naming what is wrong
        return value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8080")
        return value

    @field_validator("image_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        host, sep, rest = value.partition("/")
        if not sep or not host or ("." not in host and ":" not in host and host != "localhost"):
            raise ValueError("must start with a registry host, e.g. registry.example.org/binder-")
        if rest != rest.lower() or any(c.isspace() for c in value):
            raise ValueError("must be lower case without spaces (registry repository rules)")
        return value

    @field_validator("base_path")
    @classmethod
    def _normalise_base_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = value if value.startswith("/") else "/" + value
        path = path if path.endswith("/") else path + "/"
        if not value or not _BASE_PATH.fullmatch(path):
            raise ValueError(
                "must be a URL path such as /services/binder/ (segments without "
                "spaces, '?', '#' or empty ones)"
            )
        return path

    @model_validator(mode="after")
    def _check_push_credentials(self) -> Settings:
        """Registry credentials that build pods would not get are refused: a Job refers to
        a Secret, it cannot carry the service's password (issue #14)."""
        k8s = self.kubernetes
        has_credentials = bool(
            (self.registry.username and self.registry.password) or self.registry.docker_config
        )
        if (
            self.executor == "kubernetes"
            and has_credentials
            and k8s.docker_config_secret is None
            and k8s.registry_credentials_secret is None
        ):
            raise ValueError(
                "kubernetes.docker_config_secret is needed: the registry credentials "
                "(registry.username/password or registry.docker_config) reach build pods "
                "only through a Secret holding a docker config.json (the Helm chart makes "
                "one from registry.username and secrets.registryPassword)"
            )
        return self

    @model_validator(mode="after")
    def _check_retention(self) -> Settings:
        """No replica's cached "exists" may outlive the protection a request gave."""
        if self.retention.keep_days * 86400 < self.registry.cache_seconds:
            raise ValueError(
                f"retention.keep_days ({self.retention.keep_days:g} days) is shorter than "
                f"registry.cache_seconds ({self.registry.cache_seconds:g} s): a replica "
                "could answer that an image exists after retention deleted it"
            )
        return self

    @model_validator(mode="after")
    def _check_home_copy(self) -> Settings:
        if self.hub_profiles.copy_repo_to_home and not self.repo2docker.target_repo_dir:
            raise ValueError(
                "hub_profiles.copy_repo_to_home needs repo2docker.target_repo_dir (the "
                "folder to copy from, outside the home; see docs/home-folder.md)"
            )
        return self

    @model_validator(mode="after")
    def _check_provider_proxy(self) -> Settings:
        """A build pod gets ``providers.proxy`` as a value in its Job (issue 25), which
        whoever reads Jobs reads: no credential in it."""
        proxy = self.providers.proxy
        if self.executor == "kubernetes" and proxy and "@" in proxy.split("://", 1)[-1]:
            raise ValueError(
                "providers.proxy must not hold a user name or password with the kubernetes "
                "executor: build pods get it in their Job, which is no secret"
            )
        return self

    @model_validator(mode="after")
    def _check_buildkit_builder(self) -> Settings:
        """The BuildKit builder needs repo2docker's buildx builds (2025.8+): older ones
        talk to a Docker daemon, which its build pods do not have."""
        if self.kubernetes.uses_buildkit and not self.repo2docker.uses_buildx:
            raise ValueError(
                f"kubernetes.builder {self.kubernetes.builder} needs repo2docker 2025.8 or later; "
                f"repo2docker.version is {self.repo2docker.version}"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init values; the environment overrides them.
        return (env_settings, init_settings)

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def fetch_url(self, repo: str) -> str:
        """Where the canonical ``repo`` is fetched from (``mirrors``; itself without
        one): what git, the credentials and the forge API are given."""
        return fetch_url(repo, (m.mirror() for m in self.mirrors))

    @property
    def registry_host(self) -> str:
        return self.image_prefix.partition("/")[0]

    @property
    def registry_url(self) -> str:
        if self.registry.url:
            return self.registry.url.rstrip("/")
        host = self.registry_host
        hostname = urlsplit(f"//{host}").hostname or host
        loopback = hostname in ("localhost", "::1") or hostname.startswith("127.")
        return f"{'http' if loopback else 'https'}://{host}"


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from ``path`` (or ``$BINDERHUB_SERVICE_CONFIG``) and the environment.

    Raises ``ConfigError`` with one line per problem, each naming its key.
    """
    if path is None and os.environ.get(CONFIG_ENV):
        path = os.environ[CONFIG_ENV]
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings")
        data = loaded
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, path)) from None


def format_validation_error(error: ValidationError, path: Path | str | None) -> str:
    where = f" in {path}" if path else ""
    lines = [f"invalid configuration{where}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)
