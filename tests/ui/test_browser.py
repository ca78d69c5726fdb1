"""The web UI in headless Chromium against a real server: log in, chat, escaping, helpers."""

from __future__ import annotations

import pytest

from tests.ui.fixtures import XSS_ANSWER


def _no_injection(tab, scope: str = "main") -> None:
    page = tab.page
    assert tab.dialogs == [], f"a dialog fired: {tab.dialogs}"
    assert page.locator(f"{scope} img").count() == 0
    assert page.locator(f"{scope} script").count() == 0
    assert page.locator(f"{scope} iframe:not(#report-frame)").count() == 0
    assert page.evaluate("window.__pwned === undefined")


def test_login_rejects_a_bad_key_then_accepts_a_good_one(tab):
    page = tab.page
    tab.goto("/chat")
    page.wait_for_url("**/login?next=%2Fchat")  # no key yet: sent to log in, and back afterwards
    page.fill("#api-key", "sk-ladder-not-a-real-key")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('not accepted')")
    assert page.evaluate("localStorage.getItem('ladder.apiKey')") is None
    page.fill("#api-key", tab.server.key)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(tab.server.url + "/chat")
    assert page.evaluate("localStorage.getItem('ladder.apiKey')") == tab.server.key
    page.wait_for_selector("#model-select option[value='smollm2-135m-instruct']", state="attached")
    tab.goto("/")
    page.wait_for_selector("#models-table td:text-is('smollm2-135m-instruct')")
    tab.shot("01-overview")
    page.click("#logout")
    page.wait_for_url("**/login")
    assert page.evaluate("localStorage.getItem('ladder.apiKey')") is None


@pytest.mark.slow
def test_model_output_with_markup_streams_in_as_plain_text(tab, ui_models):
    page = tab.page
    tab.login()
    tab.goto("/chat?model=xss-llama")
    page.wait_for_selector("#model-select option[value='xss-llama']", state="attached")
    assert page.input_value("#model-select") == "xss-llama"
    page.fill("#chat-input", "say something dangerous <script>window.__pwned=1</script>")
    page.click("#send")
    answer = page.locator(".msg.assistant[data-done='1']")
    answer.wait_for(timeout=120_000)  # the server loads torch and the model on the first request
    assert answer.text_content() == XSS_ANSWER
    user = page.locator(".msg.user").text_content()
    assert user == "say something dangerous <script>window.__pwned=1</script>"
    page.wait_for_timeout(300)  # give an injected onerror handler the chance to fire
    _no_injection(tab)
    assert "prompt + " in page.text_content("#chat-usage")
    tab.shot("02-chat-escaped-output")


def test_helpers_refuse_script_links_and_build_highlights_from_nodes(tab):
    page = tab.page
    tab.goto("/login")
    got = page.evaluate(
        """() => {
        const L = Ladder;
        const a = L.el("a", {href: "javascript:window.__pwned=1", text: "x"});
        const b = L.el("a", {href: " JaVaScRiPt:window.__pwned=1"});
        const c = L.el("a", {href: "data:text/html,<script>window.__pwned=1</script>"});
        const d = L.el("a", {href: "https://example.org/a?b=1"});
        const frag = L.highlight('<img src=x onerror="window.__pwned=1"> refund policy: REFUNDS',
                                 L.queryTerms("refund onerror"));
        const box = document.createElement("div");
        box.append(frag);
        document.body.append(box);
        return {a: a.getAttribute("href"), b: b.getAttribute("href"), c: c.getAttribute("href"),
                d: d.getAttribute("href"), marks: [...box.querySelectorAll("mark")].map(m => m.textContent),
                imgs: box.querySelectorAll("img").length, text: box.textContent,
                terms: L.queryTerms('"OR" -x* café refund refund')};
    }"""
    )
    assert got["a"] is None and got["b"] is None and got["c"] is None
    assert got["d"] == "https://example.org/a?b=1"
    assert got["marks"] == ["onerror", "refund", "REFUND"]
    assert got["imgs"] == 0
    assert got["text"] == '<img src=x onerror="window.__pwned=1"> refund policy: REFUNDS'
    assert got["terms"] == ["or", "café", "refund"]
    page.wait_for_timeout(200)
    assert tab.dialogs == [] and page.evaluate("window.__pwned === undefined")


def test_sse_parser_handles_split_chunks_and_stops_at_done(tab):
    page = tab.page
    tab.goto("/login")
    got = page.evaluate(
        """async () => {
        const parts = ['data: {"a":', '1}\\n\\ndata: {"a":2}\\r\\n\\r\\n: comment\\n\\nda',
                       'ta: [DONE]\\n\\ndata: {"a":3}\\n\\n'];
        const stream = new ReadableStream({start(c) {
            for (const p of parts) c.enqueue(new TextEncoder().encode(p)); c.close(); }});
        const out = [];
        for await (const x of Ladder.sse(new Response(stream))) out.push(x.a);
        return out;
    }"""
    )
    assert got == [1, 2]
