"""What the tests that drive a real program (Krita, GIMP, redis-server) do when it is missing."""

import os

import pytest


def unavailable(message: str):
    """Skip with `message` here; fail with it in CI (.ci/run sets TAUE_REQUIRE_EDITORS=1), where every program the
    tests need is installed and a skip would hide a broken set-up."""
    if os.environ.get("TAUE_REQUIRE_EDITORS") == "1":
        pytest.fail(message)
    pytest.skip(message)
