"""How every git process of ours may reach a repository: the service's own (``git
ls-remote``, ``jobs.sources.refs``) and each build's (``jobs.executors``). Pure."""

from __future__ import annotations

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
