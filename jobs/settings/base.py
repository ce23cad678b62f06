"""What every section of the settings shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(Exception):
    """The configuration is invalid; the message names every offending key."""


class Section(BaseModel):
    """A section of the settings file: frozen, unknown keys refused, its fields'
    docstrings kept (they become docs/configuration.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
