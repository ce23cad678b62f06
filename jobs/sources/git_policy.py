"""How every git process of ours may reach a repository: the service's own (``git
ls-remote``, ``jobs.sources.refs``) and each build's (``jobs.executors``). Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .record_urls import GIST_HOST

GIT_ALLOW_PROTOCOL = "http:https:git:ssh"
"""The transports git may use: those of the schemes a repository URL may have
(``jobs.sources.urls.ALLOWED_SCHEMES``); ``file`` only with ``allow_file_urls``."""


def git_policy(allow_file: bool) -> dict[str, str]:
    """git's environment of policy, the same on every machine: it never prompts for
    credentials (nor does ssh), uses only the allowed transports and reads no system
    configuration."""
    return {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        "GIT_ALLOW_PROTOCOL": GIT_ALLOW_PROTOCOL + (":file" if allow_file else ""),
        "GIT_CONFIG_NOSYSTEM": "1",
    }


PROVIDER_GIT_URLS = (f"https://{GIST_HOST}/",)
"""The git repositories that are a content provider's (BinderHub's ``gist``): git reaches
them through ``providers.proxy``, as the service and the builds reach records (issue 25)."""


def provider_git_config(proxy: str | None) -> list[tuple[str, str]]:
    """git configuration, as (key, value) pairs, that sends git's requests for the
    repositories of ``PROVIDER_GIT_URLS`` through ``proxy`` (``providers.proxy``) and no
    other: ``http.<URL>.proxy``, which git applies to the URLs that start with ``<URL>``
    (git-config(1), ``http.<url>.*``). Nothing without a proxy: the environment's proxies
    apply then, as to every repository."""
    if proxy is None:
        return []
    return [(f"http.{url}.proxy", proxy) for url in PROVIDER_GIT_URLS]


def with_git_config(env: Mapping[str, str], entries: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``env`` with ``entries`` added after the configuration its ``GIT_CONFIG_COUNT``,
    ``GIT_CONFIG_KEY_<n>`` and ``GIT_CONFIG_VALUE_<n>`` give already (git 2.31 and
    later read them as ``git -c`` would)."""
    out = dict(env)
    count = int(out.get("GIT_CONFIG_COUNT", "0"))
    for key, value in entries:
        out[f"GIT_CONFIG_KEY_{count}"] = key
        out[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    if entries:
        out["GIT_CONFIG_COUNT"] = str(count)
    return out
