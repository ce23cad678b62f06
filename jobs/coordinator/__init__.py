"""How requests become queued builds, and queued builds run.

``intake``: every request the pipeline receives (``build_requests``: the typed requests
of the API, the stream and the CLI; ``push`` and ``push_intake``: push deliveries),
answered by joining, from the cache or failure memory, or with a new build record;
``quotas``: fair use of on-demand builds; ``reconcile``: builds for pushes whose
webhook was lost; ``following``: a build's story and live events, and a request
followed until its image is ready. ``jobs.service.BuildService`` runs the builds and
owns the rest; the concurrency limits are ``jobs.concurrency``, which the Kubernetes
queue keeper shares. Nothing is imported here; each module is imported by its name.
"""
