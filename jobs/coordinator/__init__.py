"""How requests become queued builds, and queued builds run.

``build_queue``: the queued and running builds of this process and their rules (join,
supersede, what may start), pure; ``intake``: every request the pipeline receives,
answered by joining, from the cache or failure memory, or with a new build record
(``build_requests``: the typed requests of the API, the stream and the CLI; ``push``
and ``push_intake``: push deliveries); ``runner``: queued builds handed to the
executor, tried again after temporary failures (``retries``), finished; ``announcer``:
a build's log lines and states, stored and sent to watchers; ``following``: a build's
story and live events, and a request followed until its image is ready; ``quotas``:
fair use of on-demand builds; ``reconcile``: builds for pushes whose webhook was lost.
``jobs.service.BuildService`` owns one of each and wires them together. Nothing is
imported here; each module is imported by its name.
"""
