"""Symlinks that lead out of a checkout are removed before repo2docker reads it
(jobs/repo2docker/checkout_links.py), and the configuration file every executor gives repo2docker
runs that check (jobs/repo2docker/command.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.repo2docker.checkout_links import checked, links_outside, remove_links_outside
from jobs.repo2docker.command import CONTENT_PROVIDER_CONFIG
from testkit.components import git


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout in a build's working directory, with a credential file next to it."""
    (tmp_path / "git").mkdir()
    (tmp_path / "git" / "config").write_text("secret\n")
    root = tmp_path / "tmp" / "repo2docker-checkout"
    (root / "binder").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "README.md").write_text("hello\n")
    return root


def link(root: Path, name: str, target: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def test_links_that_resolve_outside_are_found_whatever_their_form(checkout: Path) -> None:
    outside = {
        "runtime.txt": "/proc/self/environ",  # absolute
        "apt.txt": "../../git/config",  # relative, to the build's own credentials
        "binder/environment.yml": "../../x",  # out of a subdirectory
        "Dockerfile": "/etc/passwd",
        "up": "..",  # a directory link, not followed into
        "etc": "/etc",
        "cwd": "/proc/self/cwd",  # whatever the reader's directory is
        "chain": "data/../hop",  # through a directory, to a link that leads out
        "hop": "/proc/self/environ",
        "sub/module/install.R": "../../../../git/config",  # as in a submodule's checkout
    }
    inside = {
        "readme": "README.md",
        "binder/readme": "../README.md",
        "here": ".",
        "data/self": "../data",
        "dangling": "not-there-yet",  # a target inside that does not exist
        "loop-a": "loop-b",  # a loop: reading it fails, it shows nothing
        "loop-b": "loop-a",
        "absolute-inside": str(checkout / "README.md"),
    }
    for name, target in {**outside, **inside}.items():
        link(checkout, name, target)
    assert links_outside(str(checkout)) == sorted(outside.items())


def test_git_directories_are_not_looked_into(checkout: Path) -> None:
    link(checkout, ".git/hooks/x", "/etc/passwd")  # git's own, not the repository's
    assert links_outside(str(checkout)) == []


def test_a_chain_is_judged_whole_before_anything_is_removed(checkout: Path) -> None:
    # removing "c" first would leave "a -> b -> c" dangling inside, and kept
    link(checkout, "a", "b")
    link(checkout, "b", "c")
    link(checkout, "c", "/proc/self/environ")
    lines = remove_links_outside(str(checkout))
    assert lines == [
        "removed the symlink a -> b: it points outside the repository\n",
        "removed the symlink b -> c: it points outside the repository\n",
        "removed the symlink c -> /proc/self/environ: it points outside the repository\n",
    ]
    assert not any((checkout / name).is_symlink() for name in "abc")
    assert (checkout / "README.md").read_text() == "hello\n"


def test_names_and_targets_are_shown_on_one_line_and_cut(checkout: Path) -> None:
    link(checkout, "new\nline", "/etc/\x1b[31m" + "x" * 300)
    (line,) = remove_links_outside(str(checkout))
    assert line.startswith("removed the symlink new\\nline -> /etc/\\x1b[31mxxx")
    assert line.count("\n") == 1
    assert len(line) < 300


class FakeGit:
    """Stands in for repo2docker's Git provider: its fetch makes a checkout."""

    def __init__(self, links: dict[str, str]) -> None:
        self.links = links

    def fetch(
        self, spec: dict[str, Any], output_dir: str, yield_output: bool = False
    ) -> Iterator[str]:
        Path(output_dir, "README.md").write_text("hello\n")
        for name, target in self.links.items():
            os.symlink(target, Path(output_dir, name))
        yield f"cloned {spec['repo']}\n"


def test_the_checked_provider_removes_the_links_after_fetching(tmp_path: Path) -> None:
    provider = checked(FakeGit)
    assert provider.__name__ == "CheckedGit"
    instance = provider({"runtime.txt": "/proc/self/environ", "readme": "README.md"})
    lines = list(instance.fetch({"repo": "r"}, str(tmp_path), yield_output=True))
    assert lines == [
        "cloned r\n",
        "removed the symlink runtime.txt -> /proc/self/environ: it points outside the repository\n",
    ]
    assert not (tmp_path / "runtime.txt").is_symlink()
    assert (tmp_path / "readme").is_symlink()


CHECK_CONFIG = textwrap.dedent(
    """
    import sys
    from traitlets.config.loader import PyFileConfigLoader
    from repo2docker.contentproviders import Git

    config = PyFileConfigLoader(sys.argv[1]).load_config()
    (provider,) = config.Repo2Docker.content_providers
    assert issubclass(provider, Git) and provider.__name__ == "CheckedGit", provider
    cp = provider()
    spec = cp.detect(sys.argv[2], ref=sys.argv[3])
    for line in cp.fetch(spec, sys.argv[4], yield_output=True):
        print("fetch:", line.rstrip())
    """
)


def test_the_configuration_file_makes_repo2dockers_git_provider_check(tmp_path: Path) -> None:
    """repo2docker's own config loader and Git provider (in a process of their own:
    importing repo2docker warns), cloning a real repository with hostile links."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "README.md").write_text("hello\n")
    os.symlink("/proc/self/environ", repo / "runtime.txt")
    os.symlink("README.md", repo / "readme")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "hostile", cwd=repo)
    sha = git("rev-parse", "HEAD", cwd=repo)
    config = tmp_path / "repo2docker_config.py"
    config.write_text(CONTENT_PROVIDER_CONFIG)
    out = tmp_path / "checkout"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", CHECK_CONFIG, str(config), str(repo), sha, str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "fetch: removed the symlink runtime.txt -> /proc/self/environ: "
        "it points outside the repository"
    ) in result.stdout.splitlines()
    assert not (out / "runtime.txt").is_symlink()
    assert (out / "readme").read_text() == "hello\n"


def test_the_configuration_file_carries_the_modules_source() -> None:
    import jobs.repo2docker.checkout_links as module

    source = Path(module.__file__).read_text()
    assert source in CONTENT_PROVIDER_CONFIG
    assert CONTENT_PROVIDER_CONFIG.endswith(
        "c.Repo2Docker.content_providers = [checked(repo2docker.contentproviders.Git)]\n"
    )
