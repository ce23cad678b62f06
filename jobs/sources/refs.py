"""Resolve a ref (branch, tag, HEAD) to a commit with ``git ls-remote``.

A full 40-hex SHA is used as given. Everything else asks the repository (or, with a
token, its forge's API: ``jobs.forges``, tried first; issue 8). Answers are
cached for ``ttl`` seconds and can be refreshed by push webhooks (``remember``);
concurrent resolutions of the same ref share one ``git`` process.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from ..errors import GitError, InvalidRequest, RefNotFound, RepoNotReadable, RepoUnreachable
from .git_policy import git_policy
from .specs import SHA_RE, RefKind, ResolvedRef, check_ref, looks_like_abbreviated_sha


def pick_ref(ls_remote_output: str, ref: str) -> ResolvedRef | None:
    """Choose the commit ``ref`` names from ``git ls-remote`` output. Pure.

    Order: an exact full ref name (``refs/...`` or ``HEAD``), then the branch, then
    the tag (peeled: an annotated tag names its tag object, ``^{}`` the commit).
    """
    refs: dict[str, str] = {}
    for line in ls_remote_output.splitlines():
        sha, _, name = line.partition("\t")
        if SHA_RE.match(sha) and name:
            refs[name] = sha
    if ref == "HEAD" and "HEAD" in refs:
        return ResolvedRef(refs["HEAD"], "head", "HEAD")
    if ref.startswith("refs/"):
        sha_ = refs.get(f"{ref}^{{}}") or refs.get(ref)
        if sha_ is None:
            return None
        kind: RefKind = (
            "branch"
            if ref.startswith("refs/heads/")
            else "tag"
            if ref.startswith("refs/tags/")
            else "other"
        )
        return ResolvedRef(sha_, kind, ref)
    if f"refs/heads/{ref}" in refs:
        return ResolvedRef(refs[f"refs/heads/{ref}"], "branch", f"refs/heads/{ref}")
    tag = f"refs/tags/{ref}"
    if tag in refs:
        return ResolvedRef(refs.get(f"{tag}^{{}}", refs[tag]), "tag", tag)
    return None


def git_environment(allow_file: bool) -> dict[str, str]:
    """Environment for the service's own git: this machine's paths, locale, CA bundles
    and proxies, and ``git_policy``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO")
        or key.endswith("_PROXY")
        or key.endswith("_proxy")
    }
    env.update(git_policy(allow_file))
    return env


async def ls_remote(
    args: list[str],
    url: str,
    *,
    seconds: float,
    allow_file: bool,
    extra_env: Mapping[str, str] | None = None,
) -> str:
    """Run ``git ls-remote <args>`` (``args`` hold the URL, after ``--``) and return its
    output. Raises ``git_failure``'s error when git fails (RepoNotReadable: the host
    refused; RepoUnreachable: it could not be reached), GitError when it takes too long.
    ``extra_env`` adds to git's environment (credentials, as ``GIT_CONFIG_*``)."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        "ls-remote",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**git_environment(allow_file), **(extra_env or {})},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise GitError(f"git ls-remote {url} took longer than {seconds:g}s") from None
    if proc.returncode != 0:
        raise git_failure(url, err.decode(errors="replace"), proc.returncode)
    return out.decode(errors="replace")


_UNREACHABLE_MARKERS = (
    "could not resolve host",
    "temporary failure in name resolution",
    "unable to connect",
    "failed to connect",
    "connection refused",
    "connection reset",
    "connection timed out",
    "operation timed out",
    "timed out after",
    "network is unreachable",
    "no route to host",
    "the requested url returned error: 5",
    "remote end hung up unexpectedly",
    "early eof",
    "ssl_read",
    "gnutls recv error",
)
"""What git prints (lower case) when the host could not be reached or failed, as
opposed to answering "no such repository" or "not for you"."""


def git_failure(url: str, stderr: str, returncode: int | None) -> RepoNotReadable | RepoUnreachable:
    """The error a failed ``git ls-remote`` of ``url`` means, from its ``stderr``. Pure.

    Temporary (``RepoUnreachable``) when git says the host could not be reached or
    failed (no connection, a name that does not resolve, a 5xx, a dropped connection);
    permanent (``RepoNotReadable``) otherwise: the host answered, and the repository is
    not there, not exported, or private and our credentials (if any) are refused. The
    message is git's last line, which never holds credentials (they are not in URLs).
    """
    lines = stderr.strip().splitlines()
    detail = lines[-1] if lines else f"exit code {returncode}"
    message = f"cannot read repository {url}: {detail}"
    lower = stderr.lower()
    if any(marker in lower for marker in _UNREACHABLE_MARKERS):
        return RepoUnreachable(message)
    return RepoNotReadable(message)


class ForgeRefSource(Protocol):
    async def resolve(self, url: str, ref: str) -> ResolvedRef | None:
        """The commit ``ref`` names, or None when git should be asked instead."""
        ...


class RefResolver:
    """Resolves refs with a forge's API (``forge``) or ``git ls-remote``, caching
    answers for a short time. ``git_env`` is added to git's environment; ``fetch`` says
    where a repository is fetched from (the ``mirrors`` setting: ``Settings.fetch_url``),
    which git asks; answers are kept under the URL asked for."""

    def __init__(
        self,
        *,
        timeout: float,
        ttl: float,
        allow_file: bool = False,
        clock: Callable[[], float] = time.monotonic,
        forge: ForgeRefSource | None = None,
        git_env: Mapping[str, str] | None = None,
        fetch: Callable[[str], str] | None = None,
    ) -> None:
        self._fetch = fetch or (lambda url: url)
        self._timeout = timeout
        self._ttl = ttl
        self._allow_file = allow_file
        self._forge = forge
        self._git_env = dict(git_env or {})
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, ResolvedRef]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[ResolvedRef]] = {}

    @property
    def git_env(self) -> dict[str, str]:
        """What git needs besides the policy (credentials), for other callers of git."""
        return dict(self._git_env)

    def remember(self, url: str, ref: str, resolved: ResolvedRef) -> None:
        """Record what a trusted source (a push webhook) told us a ref points at."""
        self._cache[(url, ref)] = (self._clock(), resolved)

    def forget(self, url: str, ref: str) -> None:
        """Drop the cached answer for ``ref`` of ``url`` (a push deleted the ref)."""
        self._cache.pop((url, ref), None)

    def cached(self, url: str, ref: str) -> ResolvedRef | None:
        hit = self._cache.get((url, ref))
        if hit is None or self._clock() - hit[0] > self._ttl:
            return None
        return hit[1]

    async def resolve(self, url: str, ref: str) -> ResolvedRef:
        """The commit ``ref`` names in ``url``. Raises InvalidRequest (an upper-case
        SHA), RefNotFound, RepoNotReadable (permanent), RepoUnreachable and GitError
        (temporary), ForgeRateLimited."""
        check_ref(ref)
        if SHA_RE.match(ref):
            return ResolvedRef(ref, "commit", ref)
        if SHA_RE.match(ref.lower()):
            raise InvalidRequest("a commit SHA must be lower case")
        hit = self.cached(url, ref)
        if hit is not None:
            return hit
        key = (url, ref)
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._ls_remote(url, ref))
            self._inflight[key] = future
            future.add_done_callback(lambda _: self._inflight.pop(key, None))
        resolved = await asyncio.shield(future)
        self._cache[key] = (self._clock(), resolved)
        return resolved

    async def _ls_remote(self, url: str, ref: str) -> ResolvedRef:
        if self._forge is not None:
            resolved = await self._forge.resolve(url, ref)
            if resolved is not None:
                return resolved
        where = self._fetch(url)
        named = url if where == url else f"{url} (fetched from {where})"
        # "--" ends the options: neither the URL nor the ref can be taken for one.
        args = ["--", where]
        if ref != "HEAD" and not ref.startswith("refs/"):
            args += [f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}"]
        elif ref != "HEAD":
            args += [ref, f"{ref}^{{}}"]
        else:
            args += ["HEAD"]
        out = await ls_remote(
            args, named, seconds=self._timeout, allow_file=self._allow_file, extra_env=self._git_env
        )
        resolved = pick_ref(out, ref)
        if resolved is None:
            if looks_like_abbreviated_sha(ref):
                raise RefNotFound(
                    f"{ref!r} is not a branch or tag of {named}; abbreviated commit SHAs cannot "
                    "be resolved with git ls-remote, give the full 40-character SHA"
                )
            raise RefNotFound(f"{named} has no branch or tag named {ref!r}")
        return resolved
