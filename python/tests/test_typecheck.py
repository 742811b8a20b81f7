"""The package is typed (py.typed says so): the pinned type checker (mypy, python/requirements-ci.txt) finds no
error in python/lrtop, with the settings in python/pyproject.toml."""
import os
import subprocess
import sys

import pytest


def test_mypy_finds_no_error_in_the_package():
    pytest.importorskip("mypy", reason="mypy is not installed: pip install -r python/requirements-ci.txt")
    python_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=python_dir, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
