"""repo2docker content providers of binderhub-service (issue 25): each fetches exactly
the version a build's image is named after. One module per provider."""
