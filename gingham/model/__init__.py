"""Gingham's resource model (apiVersion gingham.io/v1)."""
