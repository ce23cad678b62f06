# binderhub-service: the hub's spawn page offers the images the service built.
# The hub fetches a ready KubeSpawner profile_list from the service with the token it shares
# with it (hub.services.<SERVICE>.apiToken): nothing of binderhub-service is installed on the
# hub. Profiles the hub already has (a list) come first. See binderhub-service's
# docs/launching.md.
# ruff: noqa: F821 (`c` is the hub's configuration)
import json

from tornado.httpclient import AsyncHTTPClient

SERVICE = "binder"  # the service's name in hub.services


def binderhub_service_profiles(name, own):
    service = next((s for s in c.JupyterHub.services if s.get("name") == name), {})
    if not (service.get("url") and service.get("api_token")):
        raise ValueError(f"binderhub-service: hub.services.{name} needs url and apiToken")
    url = service["url"].rstrip("/") + f"/services/{name}/api/v1/profiles"
    headers = {"Authorization": f"token {service['api_token']}"}

    async def profile_list(spawner):
        try:
            response = await AsyncHTTPClient().fetch(url, headers=headers, request_timeout=10)
            ours = json.loads(response.body)
        except Exception as e:  # a build service that is down must not stop spawns
            spawner.log.warning("binderhub-service profiles from %s: %s", url, e)
            ours = []
        return [*own, *ours]

    return profile_list


c.KubeSpawner.profile_list = binderhub_service_profiles(
    SERVICE, list(c.KubeSpawner.profile_list) if "profile_list" in c.KubeSpawner else []
)
