# The test hub's configuration (tests/cluster/hub_install.py mounts it with values.yaml): a
# JupyterHub with KubeSpawner set up from zero-to-jupyterhub-shaped values the way z2jh's
# documentation describes the options this project relies on. values.yaml holds the
# install's options with z2jh's documented defaults already filled in (hub_install.py refuses
# any option it does not implement), so nothing here guesses a default.
#
#   hub.services.<name>        c.JupyterHub.services, with name <name> and apiToken as
#                              api_token (the hub's proxy routes /services/<name>/ to url)
#   hub.loadRoles.<name>       c.JupyterHub.load_roles, with name <name>
#   hub.db.type: sqlite-memory the hub's database in memory
#   imagePullSecret            the Secret `image-pull-secret` in user pods' imagePullSecrets
#   singleuser.image, .startTimeout, .initContainers, .extraLabels (user pods carry
#                              hub.jupyter.org/network-access-hub by default)
#   singleuser.storage         type static: the claim static.pvcName at homeMountPath, with
#                              subPath static.subPath ("{username}")
#   hub.extraConfig.<name>     Python run last, in the order of the names
import os
from pathlib import Path
from typing import Any

import yaml

c: Any = get_config()  # type: ignore[name-defined]  # noqa: F821 - traitlets provides it
HERE = Path(__file__).resolve().parent
values = yaml.safe_load((HERE / "values.yaml").read_text())
hub, singleuser = values["hub"], values["singleuser"]
release = os.environ["HUB_RELEASE"]

c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.cookie_secret = os.urandom(32)
c.JupyterHub.cleanup_servers = False  # user pods outlive a hub restart, as in z2jh
assert hub["db"]["type"] == "sqlite-memory", hub["db"]
c.JupyterHub.db_url = "sqlite://"

# the proxy runs in its own pod; the hub reaches its API, and is reached, by Service names
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://proxy-api:8001"  # token: $CONFIGPROXY_AUTH_TOKEN
c.JupyterHub.hub_bind_url = "http://:8081"
c.JupyterHub.hub_connect_url = "http://hub:8081"

c.JupyterHub.services = [
    {"name": name, **{k: v for k, v in s.items() if k != "apiToken"}, "api_token": s["apiToken"]}
    for name, s in hub["services"].items()
]
c.JupyterHub.load_roles = [{"name": name, **role} for name, role in hub["loadRoles"].items()]

c.KubeSpawner.namespace = os.environ["POD_NAMESPACE"]
c.KubeSpawner.common_labels = {
    "app": "jupyterhub",
    "release": release,
    "app.kubernetes.io/name": "jupyterhub",
    "app.kubernetes.io/instance": release,
    "app.kubernetes.io/managed-by": "kubespawner",
}
c.KubeSpawner.extra_labels = singleuser["extraLabels"]
image = singleuser["image"]
c.KubeSpawner.image = f"{image['name']}:{image['tag']}" if image.get("tag") else image["name"]
if image.get("pullPolicy"):
    c.KubeSpawner.image_pull_policy = image["pullPolicy"]
if values["imagePullSecret"]["create"]:
    c.KubeSpawner.image_pull_secrets = ["image-pull-secret"]
c.KubeSpawner.start_timeout = singleuser["startTimeout"]
c.KubeSpawner.init_containers = singleuser["initContainers"]
c.KubeSpawner.uid = 1000
c.KubeSpawner.fs_gid = 100
storage = singleuser["storage"]
if storage["type"] == "static":
    c.KubeSpawner.volumes = [
        {"name": "home", "persistentVolumeClaim": {"claimName": storage["static"]["pvcName"]}}
    ]
    c.KubeSpawner.volume_mounts = [
        {
            "name": "home",
            "mountPath": storage["homeMountPath"],
            "subPath": storage["static"]["subPath"],
        }
    ]

for _name, _code in sorted(hub["extraConfig"].items()):
    exec(compile(_code, f"hub.extraConfig.{_name}", "exec"))  # noqa: S102 - as z2jh does
