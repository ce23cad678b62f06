"""BuildKit daemons short of a host resource, for the tests of failures that are the
host's and not the commit's (issue 20): one whose state (``--root``: its snapshots,
where every RUN step writes) is a small tmpfs, one whose build containers run under a
memory cgroup with a small limit. Both limits can be raised while the daemon runs, as
an operator frees a disk or gives a node more memory. Root only (mount, cgroups).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from .buildkit import BuildKitDaemon, buildkit_bin
from .components import ROOT, wait_until

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _start(directory: Path, worker_options: str = "") -> BuildKitDaemon:
    """A buildkitd (OCI worker, Debian's runc) on ``unix://<directory>/buildkitd.sock``
    with its state in ``<directory>/root``."""
    subprocess.run([ROOT / "scripts" / "ensure-buildkit.sh"], check=True)
    address = f"unix://{directory / 'buildkitd.sock'}"
    config = directory / "buildkitd.toml"
    config.write_text(
        f'root = "{directory / "root"}"\n'
        f'[grpc]\n  address = ["{address}"]\n'
        f'[worker.oci]\n  enabled = true\n  binary = "runc"\n  gc = false\n{worker_options}'
        "[worker.containerd]\n  enabled = false\n"
    )
    with (directory / "buildkitd.log").open("ab") as log:
        process = subprocess.Popen(
            [buildkit_bin("buildkitd"), "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    daemon = BuildKitDaemon(address, directory, process.pid, process)
    wait_until(lambda: "running server on" in daemon.log())
    return daemon


class SmallDiskBuildKit:
    """A buildkitd whose ``--root`` is a tmpfs of ``size`` (``mount -o size=``: ``512m``)."""

    def __init__(self, directory: Path, size: str) -> None:
        self.root = directory / "root"
        self.root.mkdir(parents=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "bhs-test-disk", self.root],
            check=True,
        )
        try:
            self.daemon = _start(directory)
        except BaseException:
            subprocess.run(["umount", self.root], check=False)
            raise

    def resize(self, size: str) -> None:
        """Make the disk ``size`` large (room freed, as an operator would)."""
        subprocess.run(["mount", "-o", f"remount,size={size}", self.root], check=True)

    def stop(self) -> None:
        self.daemon.stop()
        subprocess.run(["umount", "--lazy", self.root], check=False)


class SmallMemoryBuildKit:
    """A buildkitd whose build containers run under the cgroup ``name`` (its
    ``defaultCgroupParent``), whose memory limit is ``limit`` bytes. cgroup v1 (the
    memory hierarchy) or v2 (the unified one), whichever the host mounts at
    /sys/fs/cgroup."""

    def __init__(self, directory: Path, name: str, limit: int) -> None:
        unified = (CGROUP_ROOT / "cgroup.controllers").exists()
        self.cgroup = CGROUP_ROOT / name if unified else CGROUP_ROOT / "memory" / name
        self._limit_file = "memory.max" if unified else "memory.limit_in_bytes"
        self.cgroup.mkdir()
        if unified:  # let the group's children have a memory controller of their own
            (self.cgroup / "cgroup.subtree_control").write_text("+memory")
        self.set_limit(limit)
        directory.mkdir(parents=True, exist_ok=True)
        try:
            self.daemon = _start(directory, f'  defaultCgroupParent = "{name}"\n')
        except BaseException:
            self._remove()
            raise

    def set_limit(self, limit: int) -> None:
        (self.cgroup / self._limit_file).write_text(str(limit))

    def _remove(self) -> None:
        # runc removes each container's own group; the ones between it and ours stay
        for where, _, _ in os.walk(self.cgroup, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(where)

    def stop(self) -> None:
        self.daemon.stop()
        self._remove()
