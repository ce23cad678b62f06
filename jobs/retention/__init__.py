"""Registry retention: which images to delete, deleting them, and the record (issue 26)."""
