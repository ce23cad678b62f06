"""Pre-pull: the images the catalog offers, on the user nodes before anyone spawns (issue 26)."""
