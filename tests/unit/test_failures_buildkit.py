"""Golden tests of ``classify_failure`` on output of real repo2docker 2026.4.0 runs with
builder/'s ``buildkit`` engine (``docker buildx`` v0.38.2, buildkitd v0.34.2).

Each ``golden/repo2docker_2026_failures/<case>.log`` is what repo2docker wrote (the
venv's path shortened to /venv), building a Dockerfile repository from a git checkout
and pushing to a registry with authentication on 127.0.0.1:

- step_failed: ``RUN echo about to fail && exit 3``; dockerfile_parse_error: ``RUNN echo x``
- daemon_unreachable: ``BUILDKIT_HOST=tcp://127.0.0.1:1``
- certificate_refused: ``BUILDKIT_TLS_DIR`` whose ``ca.pem`` did not sign the daemon's
  certificate; client_certificate_refused: a client certificate of another CA
- buildx_connection_timeout: buildx's own report of a daemon that never answered (run
  without the engine's probe)
- buildx_missing: no ``docker`` on PATH
- cache_export_failed: ``--cache-to type=registry,ref=127.0.0.1:1/…,ignore-error=false``
  (the service passes ``ignore-error=true``, with which the same build succeeds)
- push_registry_unreachable: image name on ``127.0.0.1:1``
- disk_full: ``RUN dd if=/dev/zero of=/big bs=1M count=600`` on a buildkitd whose ``--root``
  is a 512 MiB tmpfs (issue 20: a full disk is not the commit's failure)
- out_of_memory: ``RUN head -c 300m /dev/zero | tail`` on a buildkitd whose build
  containers' cgroup parent (cgroup v1) has a 64 MiB memory limit
- commit_gone: ``--ref`` names a commit that a rewrite of the branch (and ``git gc``)
  removed from the repository on the git server
- step_failed_docker_20_10: ``RUN echo marker-before-failing && exit 3`` built by
  repo2docker's own ``docker`` engine in a Kubernetes build pod, through the node's Docker
  20.10 socket (buildx's ``docker`` driver, Docker's built-in BuildKit); the tail of the log
  as the cluster test printed it
- record_changed: a HydroShare resource modified while builder/'s provider downloaded its
  bag (tests/integration/test_hydroshare_ckan_builds.py; the phases and messages of its stored log)
- record_not_ready: a HydroShare bag that stayed "being prepared" (the stand-in of
  tests/integration/test_hydroshare_ckan_builds.py answering 200 without the redirect to S3) until
  builder/'s provider stopped waiting after its 300 s (a one-off run, not kept as a test
  for its length; the phases and messages of its stored log)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.model import LogLine
from jobs.repo2docker.failures import Failure, classify_failure
from jobs.repo2docker.log_lines import parse_log_line

GOLDEN = Path(__file__).parent / "golden" / "repo2docker_2026_failures"
IMAGE = "registry.example/binder-x:0123456789abcdef0123456789abcdef01234567"
DAEMON = "tcp://127.0.0.1:5992 (server name 127.0.0.1)"
PUSHED = "127.0.0.1:1/t1:0beb8a2952a5151866e9b44bb7ea3abc455c662a"
REFUSED = "dial tcp 127.0.0.1:1: connect: connection refused"

EXPECTED: dict[str, Failure] = {
    "disk_full": Failure("a disk is full: error writing '/big': No space left on device"),
    "out_of_memory": Failure(
        'the build was killed, most likely out of memory: failed to solve: process "/bin/sh'
        ' -c head -c 300m /dev/zero | tail" did not complete successfully: exit code: 137'
    ),
    "record_changed": Failure(
        "the record changed while it was fetched: HydroShare resource "
        "b8f6eae9d89241cf8b5904033460af61 was modified during the download (modified "
        "1700000500.123456, the image is named after 1700000000.123456): not building it "
        "under that name"
    ),
    "record_not_ready": Failure(
        "the record was not ready to download: HydroShare has not prepared the bag of "
        "resource b8f6eae9d89241cf8b5904033460af61 after 300 s of waiting: not ready, try "
        "again later"
    ),
    "commit_gone": Failure(
        "commit d7074e575bffe7e20434ac289dba9deb0c1dbeb4 is no longer in the repository"
        " (fatal: Could not parse object 'd7074e575bffe7e20434ac289dba9deb0c1dbeb4'.)"
    ),
    "step_failed_docker_20_10": Failure(
        "a Dockerfile step failed: failed to solve: executor failed running [/bin/sh -c echo"
        " marker-before-failing && exit 3]: exit code: 3",
        remember=True,
    ),
    "step_failed": Failure(
        'a Dockerfile step failed: failed to solve: process "/bin/sh -c echo about to fail'
        ' && exit 3" did not complete successfully: exit code: 3',
        remember=True,
    ),
    "dockerfile_parse_error": Failure(
        "the Dockerfile is invalid: dockerfile parse error on line 3: unknown instruction:"
        " RUNN (did you mean RUN?)",
        remember=True,
    ),
    "daemon_unreachable": Failure(
        "the BuildKit daemon at tcp://127.0.0.1:1 is unreachable: [Errno 111] Connection refused"
    ),
    "certificate_refused": Failure(
        f"TLS certificate refused talking to the BuildKit daemon at {DAEMON}: [SSL:"
        " CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer"
        " certificate (_ssl.c:1006)"
    ),
    "client_certificate_refused": Failure(
        f"TLS certificate refused talking to the BuildKit daemon at {DAEMON}: [SSL:"
        " TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)"
    ),
    "buildx_connection_timeout": Failure(
        "the BuildKit daemon did not answer: context deadline exceeded"
    ),
    "buildx_missing": Failure(
        "docker buildx is missing: `docker buildx version` failed ([Errno 2] No such file or"
        " directory: 'docker'); install the buildx CLI plugin"
    ),
    "cache_export_failed": Failure(
        "exporting the build cache failed: failed to solve: error writing layer blob: failed"
        ' to do request: Head "http://127.0.0.1:1/v2/t1/blobs/sha256:7e4d997d903268f522309f6'
        f'37e11a8443d0710704c7533477664dc198494c745": {REFUSED}'
    ),
    "push_registry_unreachable": Failure(
        f"pushing {IMAGE} failed: failed to solve: failed to push {PUSHED}: failed to do"
        ' request: Head "http://127.0.0.1:1/v2/t1/blobs/sha256:44136fa355b3678a1146ad16f7e86'
        f'49e94fb4fc21fe77e8310c060f61caaff8a": {REFUSED}'
    ),
}


def lines_of(case: str) -> list[LogLine]:
    raw = (GOLDEN / f"{case}.log").read_text().splitlines()
    return [line for line in map(parse_log_line, raw) if line is not None]


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_real_repo2docker_2026_failures(case: str) -> None:
    assert classify_failure(1, lines_of(case), IMAGE) == EXPECTED[case]


def test_every_golden_log_has_an_expectation() -> None:
    assert {path.stem for path in GOLDEN.glob("*.log")} == set(EXPECTED)


def test_a_step_printing_error_lines_is_not_taken_for_buildx() -> None:
    # a RUN step's own output carries the step's "#N" prefix; only buildx's last
    # un-prefixed ERROR line counts
    lines = [
        LogLine("building", "#8 0.2 ERROR: failed to build: failed to solve: process x"),
        LogLine("building", " > exporting to image:"),
        LogLine("building", "ERROR: failed to build: failed to push r/x:1: 500"),
        LogLine("failed", "Error during build: Command '['docker', 'buildx', 'build', '.']'"),
    ]
    assert classify_failure(1, lines, IMAGE) == Failure(
        f"pushing {IMAGE} failed: failed to push r/x:1: 500"
    )
