"""repo2docker, as every executor runs it and reads it. Pure functions, no I/O.

``command``: its command line and configuration file (``python -m jobs.repo2docker
--write|--check`` keeps the chart's copy of that file); ``checkout_links``: the content
provider that file defines, which removes a checkout's symlinks leading out of it;
``log_lines``: its output as bounded log lines; ``phases``: which phase a build is in
(for the per-phase deadlines); ``failures``: why a run failed and whether the failure
is the commit's own (``failures_docs`` renders that table into docs/overview.md).
Nothing is imported here; each module is imported by its name.
"""
