"""schemathesis over every /v1 and /api operation: no 5xx, and the server does what its OpenAPI spec says.

Besides "no server error" and "the body matches the documented schema", each response must have a
documented status code, the documented content type and headers, and a method the path does not
take must get a 405 whose `Allow` header lists the methods it does take. The coverage phase
(boundary values of every constraint in the spec: lengths, ranges, enums) runs for every operation.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

# Every response check schemathesis 4 has that applies to one request at a time.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,  # what the spec forbids is refused
    positive_data_acceptance,  # what the spec allows is not refused as malformed
    missing_required_header,
    unsupported_method,  # 405 with an Allow header for a method the path does not take
    allow_header_conformance,
    ignored_auth,  # a request without a valid key is refused
]
# Rules JSON Schema cannot state, so a request the spec allows may still be refused for them, with a
# 400 naming the rule (never a 422, which says the request broke the schema).
BEYOND_THE_SPEC = {
    "POST /api/kbs": "chunk_overlap is at most half of chunk_size (a rule between two fields)",
    "POST /v1/files": "the file's content: not empty, and JSON Lines of the right shape for its purpose",
}


def _schema():
    from ladder.server.app import create_app
    from ladder.server.config import ServerConfig

    # The app reads LADDER_HOME per request, so one app serves every test's fresh data dir; the rate
    # limit is lifted so that every case reaches the route instead of a 429.
    app = create_app(ServerConfig(rate_limit_rpm=10**7))
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/(v1|api)/")


schema = _schema()
# schemathesis builds its coverage cases, credentials included, while collecting; so the cases
# of this module share one data dir whose admin key exists from collection on.
_HOME = tempfile.TemporaryDirectory(prefix="ladder-fuzz-")


def _admin_key(home: Path) -> str:
    from ladder.server import keys
    from ladder.settings import reset_settings
    from ladder.store.db import reset_dbs

    old = os.environ.get("LADDER_HOME")
    os.environ["LADDER_HOME"] = str(home)
    reset_settings()
    reset_dbs()
    try:
        return keys.create_key("default", admin=True, name="schemathesis")[1]
    finally:
        if old is None:
            os.environ.pop("LADDER_HOME")
        else:
            os.environ["LADDER_HOME"] = old
        reset_settings()
        reset_dbs()


@schema.auth(refresh_interval=None)
class AdminKey:
    """The admin key, given as schemathesis's auth (not a header of every call), so that the cases
    that test a missing or bad key really go without one."""

    def __init__(self):
        self.secret: str | None = None

    def get(self, case, ctx) -> str:
        if self.secret is None:
            self.secret = _admin_key(Path(_HOME.name))
        return self.secret

    def set(self, case, data: str, ctx) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def ladder_home(monkeypatch, shared_cache_dir) -> Path:
    """Overrides the per-test data dir: every case of this module runs against the shared one."""
    from tests.conftest import _reset

    monkeypatch.setenv("LADDER_HOME", _HOME.name)
    monkeypatch.setenv("LADDER_CACHE_DIR", str(shared_cache_dir))
    _reset()
    yield Path(_HOME.name)
    _reset()


@pytest.fixture(scope="module")
def tally():
    counts: Counter = Counter()
    yield counts
    print(
        f"\nRELIABILITY schemathesis: tried={counts['tried']} clean={counts['tried'] - counts['failed']} "
        f"failed={counts['failed']} (5xx={counts['5xx']})"
    )


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_server_does_what_its_spec_says(case, tally):
    response = case.call()
    tally["tried"] += 1
    tally["5xx"] += response.status_code >= 500
    checks = CHECKS
    if case.operation.label in BEYOND_THE_SPEC:
        checks = [c for c in CHECKS if c is not positive_data_acceptance]
        if case.meta is not None and case.meta.generation.mode.is_positive:
            assert response.status_code != 422, response.text
    try:
        case.validate_response(response, checks=checks)
    except (Failure, FailureGroup):
        tally["failed"] += 1
        raise
