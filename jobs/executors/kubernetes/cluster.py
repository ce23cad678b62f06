"""The cluster the Kubernetes executor works in: its API clients, the namespace of the
build Jobs, and whether what builds need answers there.

``check_access`` is asked once before the first build (refused: ``ConfigError`` naming
the permissions; not answering: ``TemporaryError``); ``check`` and ``buildkit_checks``
are readiness's and the queue keeper's (``jobs.checks``), each bounded by
``CHECK_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ...checks import Check
from ...errors import TemporaryError
from ...settings import ConfigError, Settings
from ..daemons import ping_buildkit
from . import manifests, status

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
CHECK_TIMEOUT_SECONDS = 2.0
"""How long a check waits for the API server or the BuildKit daemon."""


def default_namespace(settings: Settings) -> str:
    if settings.kubernetes.namespace:
        return settings.kubernetes.namespace
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def api_client(settings: Settings) -> client.ApiClient:
    kubeconfig = settings.kubernetes.kubeconfig
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    api: client.ApiClient = config.new_client_from_config(
        config_file=str(kubeconfig) if kubeconfig else None
    )
    return api


class Cluster:
    """The API clients of one cluster and the namespace of this service's build Jobs.
    The clients are typed as Any: their models are loosely typed (every field
    Optional), and ``status`` checks what it reads from them itself."""

    def __init__(self, settings: Settings, api: client.ApiClient | None = None) -> None:
        self.settings = settings
        self.api = api or api_client(settings)
        self.batch: Any = client.BatchV1Api(self.api)
        self.core: Any = client.CoreV1Api(self.api)
        self.discovery: Any = client.DiscoveryV1Api(self.api)
        self.coordination: Any = client.CoordinationV1Api(self.api)
        self.namespace = default_namespace(settings)
        self.selector = manifests.label_selector(settings)

    def check_access(self) -> None:
        """Fail with a clear message when the API server cannot be used: refused
        (``ConfigError``: the permissions), or not answering or failing
        (``TemporaryError``: it may answer later)."""
        try:
            self.batch.list_namespaced_job(self.namespace, label_selector=self.selector, limit=1)
        except ApiException as e:
            problem = (
                f"kubernetes: cannot list Jobs in namespace {self.namespace!r}: "
                f"{e.status} {e.reason}: {status.api_message(e)}"
            )
            if status.api_unavailable(e):
                raise TemporaryError(problem) from None
            raise ConfigError(f"{problem} (see docs/kubernetes.md, Permissions)") from None
        except Exception as e:
            raise TemporaryError(f"kubernetes: cannot reach the API server: {e}") from None

    async def check(self) -> None:
        """The API server answers the cheapest call builds depend on: listing this
        executor's Jobs (one at most), within ``CHECK_TIMEOUT_SECONDS``."""
        try:
            await asyncio.to_thread(
                self.batch.list_namespaced_job,
                self.namespace,
                label_selector=self.selector,
                limit=1,
                _request_timeout=CHECK_TIMEOUT_SECONDS,
            )
        except ApiException as e:
            raise TemporaryError(
                f"the Kubernetes API server refused to list Jobs in namespace "
                f"{self.namespace!r}: {e.status} {e.reason}: {status.api_message(e)}"
            ) from None
        except Exception as e:
            cause = getattr(e, "reason", None) or e  # urllib3 wraps it in MaxRetryError
            raise TemporaryError(
                f"the Kubernetes API server at {self.api.configuration.host} is not "
                f"answering: {str(cause) or type(cause).__name__}"
            ) from None

    def buildkit_checks(self) -> dict[str, Check]:
        """Whether the BuildKit daemon at ``buildkit_host`` is there: a Service of this
        namespace (the chart's) has a ready endpoint, that is, a daemon pod whose own
        readiness probe passes; any other address accepts connections.

        Not a connection to the Service: one to a Service without endpoints is not
        refused everywhere (on the test VMs an intercepting proxy accepted it), and the
        NetworkPolicy of the daemon admits build pods only."""
        k8s = self.settings.kubernetes
        host = k8s.buildkit_host
        if k8s.builder != "buildkit" or host is None:
            return {}
        service = status.service_at(host, self.namespace)
        if service is None:
            return {"buildkit": lambda: ping_buildkit(host, CHECK_TIMEOUT_SECONDS)}
        return {"buildkit": lambda: self._check_service(service, host)}

    async def _check_service(self, service: str, host: str) -> None:
        where = f"Service {self.namespace}/{service}"
        try:
            slices = await asyncio.to_thread(
                self.discovery.list_namespaced_endpoint_slice,
                self.namespace,
                label_selector=f"kubernetes.io/service-name={service}",
                _request_timeout=CHECK_TIMEOUT_SECONDS,
            )
        except ApiException as e:
            raise TemporaryError(
                f"the BuildKit daemon at {host}: cannot list the endpoints of its {where}: "
                f"{e.status} {e.reason}: {status.api_message(e)}"
            ) from None
        except Exception as e:
            cause = getattr(e, "reason", None) or e
            raise TemporaryError(
                f"the BuildKit daemon at {host}: the Kubernetes API server is not answering: "
                f"{str(cause) or type(cause).__name__}"
            ) from None
        if not status.has_ready_endpoint(slices.items):
            raise TemporaryError(
                f"the BuildKit daemon at {host} is not answering: its {where} has no ready endpoint"
            )

    def ensure_config_map(self) -> None:
        body = manifests.make_config_map(self.settings, self.namespace)
        name = body["metadata"]["name"]
        try:
            current = self.core.read_namespaced_config_map(name, self.namespace)
        except ApiException as e:
            if e.status != 404:
                raise
            with contextlib.suppress(ApiException):  # another replica made it meanwhile
                self.core.create_namespaced_config_map(self.namespace, body)
            return
        if current.data != body["data"]:
            # only the data: labels and annotations others set (Helm's) stay
            current.data = body["data"]
            self.core.replace_namespaced_config_map(name, self.namespace, current)
