"""The ``likeness`` command: parse, call a service, format."""
