"""The `gingham` command line."""
