"""The lrtop Python package's version, in one place (the run log's header and checkpoints carry it)."""
__version__ = "0.1.0"
