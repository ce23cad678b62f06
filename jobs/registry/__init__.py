"""The registry images are pushed to: whether an image is there, and the credentials.

``client``: ``Registry`` (the interface the coordinator asks) and ``RegistryClient``
(the Docker Registry HTTP API v2: ``has_image``, ``check``); ``auth``: the one
credential setting, as the client's login and as each build's docker ``config.json``.
Nothing is imported here; each module is imported by its name.
"""
