"""Evals and climbs in the browser: start an eval of a chatbot on an uploaded test set, see its results."""

from __future__ import annotations

import json

import pytest

TEST_SET = [
    ("How long do refunds take?", "five days"),
    ("Can I get my money back?", "yes"),
    ("Where is my refund?", "on its way"),
]


@pytest.mark.slow
def test_start_an_eval_and_see_its_results(tab, ui_models):
    with tab.server.client() as c:
        r = c.post("/api/bots", json={"name": "eval-bot", "config": {"model": "cite-llama"}})
        assert r.status_code == 200, r.text
        rows = [
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in TEST_SET
        ]
        up = c.post(
            "/v1/files",
            data={"purpose": "fine-tune"},
            files={"file": ("eval-set.jsonl", "".join(json.dumps(x) + "\n" for x in rows).encode())},
        )
        assert up.status_code == 200, up.text
    page = tab.page
    tab.login()
    tab.goto("/reports")
    page.wait_for_selector("#eval-bot option[value='eval-bot']", state="attached")
    page.select_option("#eval-bot", "eval-bot")
    page.select_option("#eval-file", up.json()["id"])
    page.click("#eval-form button[type=submit]")
    page.wait_for_selector("#report-detail[data-status='succeeded']", timeout=120_000)
    assert page.locator("#report-items tbody tr").count() == len(TEST_SET)
    assert "Refunds take five days" in page.text_content("#report-items")
    kv = page.text_content("#report-kv")
    assert "headline" in kv
    page.wait_for_selector("#eval-table .status.succeeded")
    assert "rouge_l" in page.locator("#eval-table tbody tr").first.text_content()
    assert tab.dialogs == []
    tab.shot("08-eval-results")


def test_unknown_climb_id_shows_the_servers_message_as_text(tab):
    page = tab.page
    tab.login()
    tab.goto("/reports")
    page.fill("#climb-id", "<img src=x onerror=alert(1)>")
    page.click("#climb-lookup button[type=submit]")
    page.wait_for_selector("#flash:not([hidden])")
    assert "no task" in page.text_content("#flash")
    page.wait_for_timeout(300)
    assert tab.dialogs == [] and page.locator("body img").count() == 0
