"""Comparing: new faces and hashes against the registry, and new registry entries against the catalogue."""
