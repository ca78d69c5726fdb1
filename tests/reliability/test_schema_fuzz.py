"""schemathesis over every /v1 and /api operation: no 5xx, and the server does what its OpenAPI spec says.

Besides "no server error" and "the body matches the documented schema", each response must have a
documented status code, the documented content type and headers, and a method the path does not
take must get a 405 whose `Allow` header lists the methods it does take. The coverage phase
(boundary values of every constraint in the spec: lengths, ranges, enums) runs for every operation.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
]


def _schema():
    from ladder.server.app import create_app
    from ladder.server.config import ServerConfig

    # The app reads LADDER_HOME per request, so one app serves every test's fresh data dir; the rate
    # limit is lifted so that every case reaches the route instead of a 429.
    app = create_app(ServerConfig(rate_limit_rpm=10**7))
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/(v1|api)/")


schema = _schema()


@pytest.fixture(scope="module")
def tally():
    counts: Counter = Counter()
    yield counts
    print(f"\nRELIABILITY schemathesis: tried={counts['tried']} clean={counts['tried'] - counts['failed']} "
          f"failed={counts['failed']} (5xx={counts['5xx']})")


@pytest.fixture
def fuzz_key(ladder_home) -> str:
    from ladder.server import keys

    return keys.create_key("default", admin=True)[1]


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_server_does_what_its_spec_says(case, fuzz_key, tally):
    headers = {"Authorization": f"Bearer {fuzz_key}"}
    response = case.call(headers=headers)
    tally["tried"] += 1
    tally["5xx"] += response.status_code >= 500
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except (Failure, FailureGroup):
        tally["failed"] += 1
        raise
