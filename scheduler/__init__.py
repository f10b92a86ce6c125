"""Timed jobs: thin calls into the daemon's shared handlers."""
