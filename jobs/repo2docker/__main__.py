"""``python -m jobs.repo2docker --write|--check [PATH]``: the chart's copy of repo2docker's
configuration file (``command.main``)."""

from .command import main

raise SystemExit(main())
