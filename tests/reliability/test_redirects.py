"""Open redirect after login: hostile `next=` values in real Chromium never leave the server's origin."""

from __future__ import annotations

import time
from urllib.parse import quote, urlsplit

EVIL = "evil.example"

# Each is a `next` a browser might resolve to another origin, or to script. Most exploit what the
# WHATWG URL parser forgives: tab/CR/LF removed anywhere, "\" read as "/" in http(s) URLs, leading
# C0 and spaces stripped, "%2e" read as "." in a path, scheme-relative "//", userinfo before "@".
HOSTILE = [
    f"//{EVIL}",
    f"///{EVIL}",
    f"/\\{EVIL}",
    f"/\\/{EVIL}",
    f"\\\\{EVIL}",
    f"\\/\\/{EVIL}",
    f"/\t/{EVIL}",
    f"/\n/{EVIL}",
    f"/\r\n/{EVIL}",
    f"\t//{EVIL}",
    f" //{EVIL}",
    f"\x00//{EVIL}",
    f"/.//{EVIL}",
    f"/%2e//{EVIL}",
    f"/./\\{EVIL}",
    f"/%2F/{EVIL}",
    f"/%5C{EVIL}",
    f"/%09/{EVIL}",
    f"https://{EVIL}",
    f"http://{EVIL}/",
    f"https:{EVIL}",
    f"HTTPS://{EVIL}",
    f"https:\\\\{EVIL}",
    f"http://127.0.0.1@{EVIL}/",
    f"//{EVIL}@127.0.0.1",
    f"//{EVIL}%2F@127.0.0.1/",
    f"\uff0f\uff0f{EVIL}",  # fullwidth solidus
    f"/\u2215{EVIL}",  # division slash
    f"/\u3002{EVIL}",
    f"//{EVIL}\u3002",
    "javascript:window.__pwned=1",
    " JaVaScRiPt:window.__pwned=1",
    "java\tscript:window.__pwned=1",
    "data:text/html,<script>window.__pwned=1</script>",
    "vbscript:msgbox(1)",
    f"/login?next=//{EVIL}",
]


def _login_with_next(page, server, nxt: str, offsite: list[str]) -> str:
    """Log in from /login?next=<nxt> and return where the page ended up (or "" if it never moved)."""
    page.goto(f"{server.url}/login?next={quote(nxt, safe='')}")
    page.fill("#api-key", server.key)
    page.click("#login-form button[type=submit]")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if offsite or not page.url.startswith(server.url + "/login"):
            break
        page.wait_for_timeout(50)
    page.wait_for_timeout(100)  # let a navigation that was about to start, start
    page.wait_for_load_state()
    return page.url


def _pwned(page) -> bool:
    from playwright.sync_api import Error

    try:
        return page.evaluate("window.__pwned !== undefined")
    except Error:  # the page is navigating away (to an aborted off-origin URL): counted by `offsite`
        return False


def test_hostile_next_values_never_leave_the_origin(browser, ui_server):
    context = browser.new_context()
    offsite: list[str] = []

    def guard(route) -> None:
        # Any request for another origin is recorded and never sent (there is no network here anyway).
        if route.request.url.startswith(ui_server.url + "/"):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(20_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    origin = urlsplit(ui_server.url)
    failed = []
    try:
        for nxt in HOSTILE:
            offsite.clear()
            landed = _login_with_next(page, ui_server, nxt, offsite)
            u = urlsplit(landed)
            pwned = _pwned(page)
            if offsite or (u.scheme, u.netloc) != (origin.scheme, origin.netloc) or pwned or dialogs:
                failed.append((nxt, landed, list(offsite), pwned, list(dialogs)))
                dialogs.clear()

        # A same-origin target with a query and a fragment is honoured exactly.
        offsite.clear()
        benign = _login_with_next(page, ui_server, "/evals?x=1#y", offsite)
        assert benign == ui_server.url + "/evals?x=1#y" and not offsite
        assert _login_with_next(page, ui_server, "/chat", offsite) == ui_server.url + "/chat"
    finally:
        context.close()
    tried = len(HOSTILE)
    print(f"RELIABILITY open-redirect: tried={tried} clean={tried - len(failed)} failed={len(failed)}")
    assert not failed, "\n".join(map(repr, failed))
