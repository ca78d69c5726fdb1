"""Over HTTP, a shared remote model's failure tells callers of any project the model and the kind, not the host."""

from __future__ import annotations

import httpx

from ladder.models import registry
from tests.models import openai_stub_server
from tests.server.conftest import make_server, srv  # noqa: F401 (fixtures)


def test_502_from_a_shared_remote_model_does_not_leak_its_endpoint(srv):  # noqa: F811
    stub, url = openai_stub_server.start()
    try:
        host = "127.0.0.1:" + url.rsplit(":", 1)[1].split("/")[0]
        registry.add_remote("shared-far", url, "fail-503")
        for key in (srv.key_b, srv.admin_key):  # another project's key, then the operator's project
            r = httpx.post(
                srv.v1 + "/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "shared-far", "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            assert r.status_code == 502, r.text
            msg = r.json()["error"]["message"]
            assert "shared-far" in msg and "HTTP 503" in msg
            assert host not in r.text and url not in r.text and "fail-503" not in r.text
    finally:
        stub.shutdown()
