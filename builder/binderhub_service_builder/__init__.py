"""A repo2docker engine for builds with docker buildx and no Docker daemon."""
