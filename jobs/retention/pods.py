"""The images in use, read from the Kubernetes API: every pod of the namespaces of
``retention.in_use_namespaces`` (``jobs.retention.in_use`` reads them; issue 26)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubernetes import client

from ..executors.kubernetes.cluster import api_client, default_namespace
from ..settings import Settings
from .in_use import images_in_use

PAGE = 500


class PodImages:
    """A ``read`` of the images the pods of ``namespaces`` use. Raises whatever the
    client raises (``ApiException``, a timeout): the guard then stops the run."""

    def __init__(self, settings: Settings, api: client.ApiClient | None = None) -> None:
        self.core: Any = client.CoreV1Api(api or api_client(settings))
        self.namespaces = settings.retention.in_use_namespaces or [default_namespace(settings)]
        self.timeout = settings.retention.guard_timeout

    def _pods(self, namespace: str) -> list[dict[str, Any]]:
        """Every pod of ``namespace`` as the API's JSON, page by page."""
        pods: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            options: dict[str, Any] = {"limit": PAGE, "_request_timeout": self.timeout}
            if token:
                options["_continue"] = token
            raw = self.core.list_namespaced_pod(namespace, _preload_content=False, **options)
            page = json.loads(raw.data)
            pods.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return pods

    async def read(self) -> frozenset[str]:
        pods: list[dict[str, Any]] = []
        for namespace in self.namespaces:
            pods.extend(await asyncio.to_thread(self._pods, namespace))
        return images_in_use(pods)
