"""``binderhub-service serve`` with cProfile switched on and off by signals.

``python -m bench.profiled_serve PROFILE_PATH serve --config FILE``: runs the service's
own CLI (``webhook.cli.main``) in this process. SIGUSR1 starts profiling; SIGUSR2 stops
it and writes the profile (pstats format) to PROFILE_PATH. Used by
``bench.run --profile``, which sends them around the measured load only, so the profile
holds the requests and not the start-up. cProfile slows every Python call: read the
shares, not the totals, and never the latencies of a profiled run.
"""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType

from webhook.cli import main as cli_main


def main() -> int:
    path, argv = sys.argv[1], sys.argv[2:]
    profile = cProfile.Profile()

    def start(signum: int, frame: FrameType | None) -> None:
        profile.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profile.disable()
        profile.dump_stats(path)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
