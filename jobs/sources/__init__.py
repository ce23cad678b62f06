"""What a user asked for, and what it resolves to.

A source is what identifies content: today a git repository and a ref (``specs``:
``RepoSpec``, checked; ``urls``: the one canonical spelling of a repository URL),
resolved to an immutable version, a commit (``refs``: ``RefResolver``, ``git
ls-remote`` or a forge's API). A provider of another kind of source (a Zenodo or
Dataverse record, a DOI) is a module of its own here that parses what users give and
resolves it to an immutable version. Nothing is imported here; each module is
imported by its name.
"""
