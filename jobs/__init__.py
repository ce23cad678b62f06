"""The build pipeline: from a repository and a ref to an image in a registry.

Nothing here knows about HTTP; ``webhook`` turns requests into calls on this package.
"""
