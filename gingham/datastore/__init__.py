"""Datastore backends behind one async contract (see base.py)."""
