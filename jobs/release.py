"""What a release wrote into the service's image: its version and the builder image released
with it, so that a released service builds with its own builder by default (issue 22).

The Dockerfile's build arguments ``VERSION`` and ``BUILDER_IMAGE`` (``make release`` passes
both) land as JSON in ``<prefix>/share/binderhub-service/release.json``, where ``<prefix>``
is the service's environment (``sys.prefix``). A service installed any other way (a
development checkout, ``pip install``) has no such file, and no released builder image.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RELEASE_FILE = Path(sys.prefix) / "share" / "binderhub-service" / "release.json"
"""Where the image's build writes the release's stamp."""


def released_builder_image(path: Path = RELEASE_FILE) -> str:
    """The builder image named by the release stamp at ``path``: ``"<registry>/
    binderhub-service-builder:<version>"``, or ``""`` when there is no stamp, it names no
    builder image, or it cannot be read as a JSON object (a service that was not released:
    the kubernetes executor then needs ``kubernetes.builder_image``)."""
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    image = stamp.get("builder_image") if isinstance(stamp, dict) else None
    return image.strip() if isinstance(image, str) else ""
