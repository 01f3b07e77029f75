"""Property-based tests of the API from its own OpenAPI document (schemathesis): no request makes a 500.

A real server on a loopback port runs the real pipeline on tiny-random, with limits small enough (64..128 px, at
most 3 steps) that the valid jobs the fuzzer submits finish in moments. The document is the one the server serves
(built by the same function from the same limits), so the test needs no server at collection time.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from server import ServerConfig  # noqa: E402
from server.openapi import openapi_document  # noqa: E402
from taue_engine import TAUEConfig  # noqa: E402

LIMITS = dict(max_size=128, max_steps=3, max_prompt_chars=200)
schema = schemathesis.openapi.from_dict(openapi_document(ServerConfig(**LIMITS), TAUEConfig()))


@pytest.fixture(scope="module")
def fuzzed_server(pipe, tmp_path_factory):
    from tests.helpers.live import live_server

    with live_server(tmp_path_factory.mktemp("fuzz"), pipe, **LIMITS) as live:
        assert live.get("/api/v1/openapi.json").json() == openapi_document(ServerConfig(**LIMITS), TAUEConfig())
        yield live


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case, fuzzed_server):
    case.call_and_validate(base_url=fuzzed_server.api, checks=[not_a_server_error])
