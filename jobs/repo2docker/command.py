"""repo2docker's command line, its configuration file and the BuildKit engine's
environment. Pure functions."""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from ..settings import BuildKitSettings, Repo2DockerSettings
from ..sources.records import CONTENT_PROVIDER_CLASSES
from . import checkout_links

ENGINE = "buildkit"
"""The repo2docker engine of builder/ (entry point ``repo2docker.engines``)."""

CACHE_TAG = "buildcache"
"""Tag of a repository's BuildKit cache, next to its images (never a commit id, so it
is never taken for an image of a commit)."""

CONTENT_PROVIDER_CONFIG = (
    """\
# Written by binderhub-service. Only the Git content provider: the others probe
# hosts on the internet (Dataverse fetches a host list) before looking at the URL.
# It removes the checkout's symlinks that lead out of it before repo2docker reads the
# checkout; what follows is binderhub-service's jobs/repo2docker/checkout_links.py
# as it is.

"""
    + inspect.getsource(checkout_links)
    + """
import repo2docker.contentproviders

c.Repo2Docker.content_providers = [checked(repo2docker.contentproviders.Git)]
"""
)
"""repo2docker's configuration file, every executor's: the content provider of
``jobs/repo2docker/checkout_links.py``, defined by that module's own source, so that any
repo2docker runs it (another virtualenv, a builder image, a stock repo2docker image)."""


def cache_ref(image: str) -> str:
    """The registry cache reference for builds of ``image`` (``host/repo:tag``):
    ``host/repo:buildcache``. Pure."""
    repository, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:  # no tag (the colon was the registry's port)
        repository = image
    return f"{repository}:{CACHE_TAG}"


def buildx_args(buildkit: BuildKitSettings, image: str) -> list[str]:
    """Extra ``docker buildx build`` arguments: the registry cache of ``image``'s
    repository, when ``buildkit`` has a daemon and ``cache`` on. ``ignore-error=true``:
    a failed cache export does not fail a build whose image was pushed. With
    ``cache_image_manifest``, the cache is an OCI image manifest (what Amazon ECR takes).
    Pure."""
    if not (buildkit.host and buildkit.cache):
        return []
    ref = cache_ref(image)
    manifest = ",image-manifest=true,oci-mediatypes=true" if buildkit.cache_image_manifest else ""
    return [
        "--cache-from",
        f"type=registry,ref={ref}",
        "--cache-to",
        f"type=registry,ref={ref},mode=max{manifest},ignore-error=true",
    ]


def repo2docker_config(extra_buildx_args: list[str]) -> str:
    """The repo2docker configuration file: the Git content provider only, and
    ``DockerEngine.extra_buildx_build_args`` (which builder/'s engine inherits). Pure."""
    text = CONTENT_PROVIDER_CONFIG
    if extra_buildx_args:
        text += f"c.DockerEngine.extra_buildx_build_args = {extra_buildx_args!r}\n"
    return text


RECORD_CONFIG = """\
# Written by binderhub-service for the build of a record (issue 25): only the one
# content provider that fetches the version this build is named after.

import {module}

c.Repo2Docker.content_providers = [{module}.{name}]
"""

RECORD_CONFIG_WITH_SOURCE = """\
# Written by binderhub-service for the build of a record (issue 25): only the one
# content provider that fetches the version this build is named after. What follows is
# binderhub-service's {module} as it is.

{source}

c.Repo2Docker.content_providers = [{name}]
"""


def record_config(
    provider_class: str, extra_buildx_args: list[str], source: str | None = None
) -> str:
    """The repo2docker configuration file of a record's build: ``provider_class`` (a
    dotted name, ``jobs.sources.records.CONTENT_PROVIDER_CLASSES``) as the only content
    provider, so that no other provider's ``detect`` asks anything of the internet;
    and ``extra_buildx_args`` as ``repo2docker_config`` sets them. ``source``: the
    source of the class's module, written into the file (for a provider of builder/,
    so that a repo2docker without that package runs it), else the module is imported.
    Pure."""
    module, _, name = provider_class.rpartition(".")
    if source is None:
        text = RECORD_CONFIG.format(module=module, name=name)
    else:
        text = RECORD_CONFIG_WITH_SOURCE.format(module=module, source=source, name=name)
    if extra_buildx_args:
        text += f"c.DockerEngine.extra_buildx_build_args = {extra_buildx_args!r}\n"
    return text


CONTENT_PROVIDER_ENV = "BINDERHUB_SERVICE_CONTENT_PROVIDER"
"""A build pod's environment variable naming its record's provider (``zenodo``): the
ConfigMap's configuration file is shared by every build, so a record's build names its
one content provider here (``provider_from_environment``). Unset for git."""

PROVIDER_FROM_ENVIRONMENT = """
# A record's build (issue 25) names its provider in ${env}:
# its one content provider replaces Git. A name not listed here fails the build, never
# falls back to another provider. Only the named provider's module is imported, so a
# git build runs in any repo2docker image (one without binderhub-service-builder too).
import importlib as _importlib
import os as _os
_record_providers = {{
{providers}}}
_record_provider = _os.environ.get("{env}")
if _record_provider:
    _module, _, _name = _record_providers[_record_provider].rpartition(".")
    c.Repo2Docker.content_providers = [getattr(_importlib.import_module(_module), _name)]
"""


def provider_from_environment(classes: Iterable[tuple[str, str]]) -> str:
    """The part of a configuration file shared by builds (the Kubernetes executor's
    ConfigMap) that makes the content provider of ``CONTENT_PROVIDER_ENV`` (a name of
    ``classes``, e.g. ``zenodo``; each pair a name and a dotted class name, the items of
    ``jobs.sources.records.CONTENT_PROVIDER_CLASSES``) the only one, as ``record_config``
    does for one build. The environment names a provider, never a class: a pod's environment
    cannot make repo2docker import anything else; and only that provider's module is
    imported (builder/'s providers are not in a stock repo2docker image). Pure."""
    pairs = sorted(classes)
    providers = "".join(f"    {name!r}: {dotted!r},\n" for name, dotted in pairs)
    return PROVIDER_FROM_ENVIRONMENT.format(env=CONTENT_PROVIDER_ENV, providers=providers)


POD_CONFIG = CONTENT_PROVIDER_CONFIG + provider_from_environment(CONTENT_PROVIDER_CLASSES.items())
"""The configuration file every build pod of the Kubernetes executor shares (its
ConfigMap, and the chart's copy, ``CHART_COPY``): ``CONTENT_PROVIDER_CONFIG``, and for a
record's build the one provider its pod names."""


def proxy_environment(proxy: str | None) -> dict[str, str]:
    """The environment that sends a record's build to its provider through ``proxy``
    (``providers.proxy``; repo2docker's ``requests`` reads it, in both spellings); nothing
    without one. Pure."""
    if proxy is None:
        return {}
    return {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy}


def buildkit_environment(buildkit: BuildKitSettings) -> dict[str, str]:
    """The environment the ``buildkit`` engine reads (builder/README.md). Pure."""
    env: dict[str, str] = {}
    if buildkit.host:
        env["BUILDKIT_HOST"] = buildkit.host
    if buildkit.tls_dir:
        env["BUILDKIT_TLS_DIR"] = str(buildkit.tls_dir)
    if buildkit.tls_servername:
        env["BUILDKIT_TLS_SERVERNAME"] = buildkit.tls_servername
    return env


def repo2docker_args(
    settings: Repo2DockerSettings,
    *,
    image: str,
    repo: str,
    sha: str | None,
    config_file: str | None,
    engine: str = ENGINE,
) -> list[str]:
    """The arguments after the repo2docker command; the repository URL (or a record's
    content: then ``sha`` is None and no ``--ref`` is given) is always last.
    From 2025.8 on, ``--engine engine``: ``buildkit`` (builder/'s engine, no Docker
    daemon needed) by default, ``docker`` (repo2docker's own) where a Docker daemon
    builds, so that a stock repo2docker image serves."""
    args: list[str] = []
    if config_file is not None:
        args += ["--config", config_file]
    if settings.uses_buildx:
        # on the command line: --engine's default ("docker") overrides the config file
        args += ["--engine", engine]
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
    ]
    if sha is not None:
        args += ["--ref", sha]
    if settings.target_repo_dir:
        args += ["--target-repo-dir", settings.target_repo_dir]
    args += list(settings.extra_args)
    args.append(repo)
    return args


CHART_COPY = "chart/files/repo2docker_config.py"
"""The Helm chart's copy of ``POD_CONFIG`` (its ConfigMap is the executor's,
byte for byte): ``python -m jobs.repo2docker --write`` makes it, ``--check`` compares."""


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.repo2docker --write|--check [PATH]`` (PATH: ``CHART_COPY``)."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m jobs.repo2docker", description=main.__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    parser.add_argument("path", nargs="?", default=CHART_COPY)
    args = parser.parse_args(argv)
    path = Path(args.path)
    if args.write:
        path.write_text(POD_CONFIG, encoding="utf-8")
        return 0
    if not path.exists() or path.read_text(encoding="utf-8") != POD_CONFIG:
        print(
            f"{path} differs from jobs/repo2docker/command.py: "
            "run python -m jobs.repo2docker --write"
        )
        return 1
    return 0
