"""Gingham shared core: resource model, datastore, IPAM, CLI and lab."""
