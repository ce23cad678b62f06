"""The Kubernetes executor: builds as Kubernetes Jobs, one per image, queued in the
cluster.

``executor``: ``KubernetesExecutor``; ``manifests``: the Jobs and the ConfigMap, as
plain dicts (pure); ``credentials``: a build pod's git credential, a Secret of its own;
``queue_keeper``: the replica holding a Lease lets suspended Jobs run within the
limits; ``watch``: a watch cache of the Jobs and their pods, and a builder's log
follower; ``status``: what state a build is in and why it failed, read from them
(pure); ``rbac``: the permissions the executor needs. Nothing is imported here; each
module is imported by its name.
"""
