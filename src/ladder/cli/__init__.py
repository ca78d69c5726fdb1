"""The `ladder` command line: thin commands over the services."""
