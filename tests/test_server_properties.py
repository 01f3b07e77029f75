"""Property-based tests of the API from its own OpenAPI document (schemathesis): no request makes a 500.

The server runs the real pipeline on tiny-random, with limits small enough (64..128 px, at most 3 steps) that the
valid jobs the fuzzer submits finish in moments.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402


@pytest.fixture(scope="module")
def fuzzed_app(pipe, tmp_path_factory):
    from server import ServerConfig, create_app

    app = create_app(ServerConfig(data_dir=tmp_path_factory.mktemp("fuzz"), max_size=128, max_steps=3,
                                  max_prompt_chars=200), engine=pipe)
    yield app
    app.extensions["taue"]["jobs"].stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzzed_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case):
    case.call_and_validate(checks=[not_a_server_error])
