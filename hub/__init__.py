"""Code for a JupyterHub's configuration, imported by the hub, never by the service (issue 7):
``hub.profiles`` makes KubeSpawner profile lists from the service's image catalog."""
