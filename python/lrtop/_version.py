"""The one version of lrtop, and of the bridge protocol beside it.

The wheel's version (pyproject.toml reads `__version__` from here), the Swift binary's (`LRTopVersion` in
Sources/LRLog/Version.swift, generated from this file by scripts/generate-builtins and held to it by a test) and the
protocol that the bridge's hello and `lrtop attach` check all come from these two lines. This module imports
nothing, so the launcher and setuptools can read it without torch.
"""
__version__ = "0.1.0"

# The bridge's socket protocol (docs/bridge.md): raise it when a message changes meaning, so that a viewer and a run
# of different versions refuse each other in one line instead of misreading.
PROTOCOL = 1
