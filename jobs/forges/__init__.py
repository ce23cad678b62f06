"""GitHub and GitLab: what their APIs do for the pipeline (issue 8). Nothing is
imported here; each module is imported by its name.

- ``hosts``: the configured forges (``Forges``): which one a repository lives on, its
  client, and ref resolution through the API, tried before ``git ls-remote``.
- ``base``: what every client offers, and the ref-resolution rules they share;
  ``github`` and ``gitlab``: the two clients.
- ``status``: commit statuses from build events.
- ``credentials``: git credentials for private repositories.
- ``hook_setup``: ``binderhub-service hooks install``, creating the push webhook.
- ``errors``: the clients' errors (``ForgeRateLimited`` itself is in ``jobs.errors``).
"""
