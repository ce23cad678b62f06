"""``jupyterhub`` and ``hub_profiles``: running behind JupyterHub."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from .base import Section


class JupyterHubSettings(Section):
    enabled: bool = False
    """Run as a JupyterHub service: accept JupyterHub API tokens and log browsers in
    through the hub's OAuth. Every field below left empty is read from the environment
    JupyterHub gives the services it starts (``JUPYTERHUB_*``)."""

    api_url: str | None = None
    """The hub's REST API, e.g. ``http://hub:8081/hub/api``. Default:
    ``$JUPYTERHUB_API_URL``."""

    api_token: SecretStr | None = None
    """This service's API token, as registered in the hub's ``services``; it is also the
    OAuth client secret. Default: ``$JUPYTERHUB_API_TOKEN``."""

    service_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._~-]{1,255}$")
    """The service's name in the hub's ``services``. Default:
    ``$JUPYTERHUB_SERVICE_NAME``, else ``binder``."""

    client_id: str | None = None
    """OAuth client id. Default: ``$JUPYTERHUB_CLIENT_ID``, else
    ``service-<service_name>`` (the hub's default for services)."""

    oauth_callback_url: str | None = None
    """Where the hub sends browsers back after login; it must equal the service's
    ``oauth_redirect_uri`` in the hub. Default: ``$JUPYTERHUB_OAUTH_CALLBACK_URL``, else
    ``<base_path>oauth_callback``."""

    authorize_url: str | None = None
    """The hub's OAuth authorize page as browsers reach it. Default: derived from
    ``$JUPYTERHUB_PUBLIC_HUB_URL``, else ``/hub/api/oauth2/authorize`` (same host)."""

    access_scopes: list[str] = []
    """Hub scopes of which a token needs one to use this service at all. Default:
    ``access:services!service=<service_name>`` and ``access:services``."""

    allowed_users: list[str] = []
    """Hub users who may request builds. With this and ``allowed_groups`` both empty,
    every user with an access scope may; otherwise the others may only read."""

    allowed_groups: list[str] = []
    """Hub groups whose members may request builds (see ``allowed_users``)."""

    cache_seconds: float = Field(default=60.0, ge=0)
    """How long the hub's answer about a token is remembered (a revoked token keeps
    working at most this long)."""

    session_seconds: int = Field(default=8 * 3600, ge=60)
    """Lifetime of the browser session cookie set after the OAuth login (never longer
    than the hub's token)."""

    cookie_secret: SecretStr | None = None
    """Key that signs the session cookies. Default: derived from ``api_token``, so that
    every replica and restart shares it."""

    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the hub's API."""

    @model_validator(mode="after")
    def _check_enabled(self) -> JupyterHubSettings:
        # Checked here, with the environment, so that start-up names what is missing.
        if self.enabled:
            for name, env in (
                ("api_url", "JUPYTERHUB_API_URL"),
                ("api_token", "JUPYTERHUB_API_TOKEN"),
            ):
                if getattr(self, name) is None and not os.environ.get(env):
                    raise ValueError(f"enabled needs {name} (or ${env} in the environment)")
        return self


class HubProfileSettings(Section):
    """What ``GET /api/v1/profiles`` answers: a ready KubeSpawner ``profile_list`` (one
    profile whose ``image`` option offers the newest image of each built branch and tag)."""

    display_name: str = "Prebuilt repository images"
    """The profile's name on the hub's spawn page."""

    description: str = "Images built by binderhub-service, newest first"
    """The profile's description on the spawn page."""

    slug: str = Field(default="binderhub-service", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    """The profile's key in the spawn form (``profile-option-<slug>--image``)."""

    ref_kinds: list[Literal["branch", "tag", "head", "commit", "record"]] = [
        "branch",
        "tag",
        "head",
        "record",
    ]
    """Which built refs become choices: branches, tags, the default branch (``head``),
    bare commits, records of content providers (``record``: the newest version built of
    each Zenodo or Figshare record). Default: all but bare commits, which nobody would
    know to pick."""

    any_image_choice: bool = False
    """Add a free-text choice that admits any image under ``image_prefix`` (with a tag
    or digest), e.g. one a user built with jupyterhub-fancy-profiles."""

    copy_repo_to_home: str | None = Field(default=None, pattern=r"^/")
    """A folder under the users' home (e.g. ``/home/jovyan``): each choice gets a start
    hook that copies ``repo2docker.target_repo_dir`` into ``<folder>/<repository
    name>`` without overwriting anything (docs/home-folder.md). Needs
    ``repo2docker.target_repo_dir``."""

    kubespawner_override: dict[str, Any] = {}
    """KubeSpawner settings of the profile (``cpu_limit``, ``mem_limit``, …)."""
