"""Helpers shared by every test tier: polling with a deadline, unique names."""
