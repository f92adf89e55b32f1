"""Service functions: what the CLI (and later the API, web UI and workers) call. Shells only parse and format."""
