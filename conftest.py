import pytest


def pytest_sessionfinish(session, exitstatus):
    # A checkout without Python tests yet (python/tests and bench/ empty) collects nothing; that is not a failure.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
