"""The build pipeline: from a repository and a ref to an image in a registry.

Nothing here knows about HTTP; ``webhook`` turns requests into calls on this package,
on ``service.BuildService`` (made from settings by ``factory``). Where things are:

- ``sources/``: what a user asks for and what it resolves to (a commit);
  ``naming``: the image and build names derived from them;
- ``coordinator/``: requests into queued builds (the intake, the queue and its rules,
  quotas, pushes, the reconciler) and queued builds run (the runner, its retries);
- ``executors/``: where builds run, the local machine or Kubernetes Jobs;
  ``repo2docker/``: how they run repo2docker and read its output and failures;
- ``registry/``: whether an image is there, and the credentials to push it;
- ``store/``: build records, their logs and delivery records; ``forges/``: GitHub and
  GitLab's APIs; ``settings/``: everything the service can be told;
- one concept each at this level: ``model`` (the records), ``errors`` (permanent or
  temporary), ``events``, ``concurrency``, ``checks``, ``readiness``,
  ``redaction``, ``json_input``, ``metrics``, ``release``.
"""
