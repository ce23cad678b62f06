"""schemathesis against /openapi.json of a real server: no input makes it fail (5xx),
every answer matches the documented schema, and nothing is recorded (issue 20). The
document holds every route (tests/unit/test_openapi_routes.py); test_fuzz.py sends what
schemathesis does not (raw bytes, signed deliveries, nesting)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from testkit.components import GitServer, ServiceProcess

from .test_fuzz import Witness

StartServer = Callable[..., ServiceProcess]
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


def test_schemathesis_finds_no_server_errors(
    git_server: GitServer, start_server: StartServer, tmp_path: Path
) -> None:
    # Only the local git server is allowed, so that no generated request sends traffic
    # anywhere but this machine; everything else is refused before any I/O.
    server = start_server(
        allowed_repos=[f"git://127.0.0.1:{git_server.port}/*"],
        webhooks={"github_secret": "schemathesis", "gitlab_token": "schemathesis"},
    )
    with server.client() as client:
        assert client.get("/openapi.json").json()["openapi"] == "3.1.0"
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {server.token}",
            "--checks",
            "all",
            # A string the schema admits can still be no repository URL ("0"): we answer
            # 400 naming the problem, which this heuristic counts against us.
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "40",
            "--seed",
            "1",
            "--no-color",
            f"--report-dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-10000:] + result.stderr[-5000:]
    assert Witness(server).counts() == (0, 0)  # no build, no delivery recorded
    assert "Traceback" not in server.log()
