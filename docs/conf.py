"""Sphinx configuration for the binderhub-service documentation.

Build: ``make docs`` (``sphinx-build -W --keep-going -n``). Offline: no intersphinx.
``configuration.md`` is generated from ``jobs/settings/``; do not edit it here.
"""

project = "binderhub-service"
author = "binderhub-service contributors"
copyright = "binderhub-service contributors"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

html_theme = "alabaster"
html_title = "binderhub-service"
html_theme_options = {
    "description": "Jupyter images from git repositories, built before anyone asks.",
    "fixed_sidebar": True,
}
