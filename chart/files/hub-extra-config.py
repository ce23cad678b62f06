# binderhub-service: the hub's spawn page offers the images the service built.
# The hub fetches a ready KubeSpawner profile_list from the service with the token it shares
# with it (hub.services.<SERVICE>.apiToken): nothing of binderhub-service is installed on the
# hub. Profiles the hub already has (a list) come first. When the service does not answer
# within TIMEOUT seconds, the page shows the last list the hub received (and the hub's log
# says so, with its age). See binderhub-service's docs/launching.md.
# ruff: noqa: F821 (`c` is the hub's configuration)
import json
import time

from tornado.httpclient import AsyncHTTPClient

SERVICE = "binder"  # the service's name in hub.services
TIMEOUT = 5  # seconds the spawn page waits for the service


def binderhub_service_profiles(name, own, timeout=TIMEOUT):
    service = next((s for s in c.JupyterHub.services if s.get("name") == name), {})
    if not (service.get("url") and service.get("api_token")):
        raise ValueError(f"binderhub-service: hub.services.{name} needs url and apiToken")
    url = service["url"].rstrip("/") + f"/services/{name}/api/v1/profiles"
    headers = {"Authorization": f"token {service['api_token']}"}
    last = {}  # the last list received: its body, and when

    async def profile_list(spawner):
        try:
            response = await AsyncHTTPClient().fetch(url, headers=headers, request_timeout=timeout)
            if not isinstance(json.loads(response.body), list):
                raise ValueError("the answer is not a list of profiles")
            last.update(body=response.body, at=time.time())
        except Exception as e:  # a build service that is down must not stop spawns
            if last:
                age = time.time() - last["at"]
                spawner.log.warning(
                    "binderhub-service profiles from %s: %s; showing the list received %.0f s ago",
                    url,
                    e,
                    age,
                )
            else:
                spawner.log.warning(
                    "binderhub-service profiles from %s: %s; no list received yet", url, e
                )
                return list(own)
        return [*own, *json.loads(last["body"])]  # a fresh copy: KubeSpawner may change it

    return profile_list


c.KubeSpawner.profile_list = binderhub_service_profiles(
    SERVICE, list(c.KubeSpawner.profile_list) if "profile_list" in c.KubeSpawner else []
)
