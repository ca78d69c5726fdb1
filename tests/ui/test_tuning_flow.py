"""Fine-tuning from the browser: upload a training file with progress, start a job, watch it finish."""

from __future__ import annotations

import json

import pytest

EXAMPLES = [
    ("Where is my parcel?", "shipping"),
    ("My card was charged twice.", "billing"),
    ("How do I reset my password?", "account"),
    ("The app crashes on start.", "bug"),
    ("Can I change my delivery address?", "shipping"),
    ("I want a refund.", "billing"),
    ("How do I delete my account?", "account"),
    ("The export button does nothing.", "bug"),
    ("When will my order arrive?", "shipping"),
    ("Why was I billed after cancelling?", "billing"),
]


def _jsonl() -> bytes:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Label the message."},
                {"role": "user", "content": q},
                {"role": "assistant", "content": a},
            ]
        }
        for q, a in EXAMPLES
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.mark.slow
def test_upload_a_training_file_start_a_job_and_see_it_finish(tab, ui_models):
    page = tab.page
    tab.login()
    tab.goto("/tuning")
    page.wait_for_selector("#job-model option[value='tiny-llama']", state="attached")
    # a file name full of markup is shown as given, never parsed
    page.set_input_files(
        "#train-file",
        files=[{"name": "<img src=x onerror=alert(1)>.jsonl", "mimeType": "application/jsonl", "buffer": _jsonl()}],
    )
    page.click("#file-upload button[type=submit]")
    page.wait_for_selector("#file-table td:has-text('onerror=alert(1)')")
    page.set_input_files(
        "#train-file", files=[{"name": "support.jsonl", "mimeType": "application/jsonl", "buffer": _jsonl()}]
    )
    page.click("#file-upload button[type=submit]")
    page.wait_for_selector("#file-progress .label:has-text('support.jsonl')")
    page.wait_for_selector("#file-table td div:text-is('support.jsonl')")
    assert page.locator("#file-table img").count() == 0
    chosen = page.input_value("#job-file")
    assert chosen.startswith("file-")
    assert "support.jsonl" in page.locator(f"#job-file option[value='{chosen}']").text_content()

    page.select_option("#job-model", "tiny-llama")
    page.fill("#job-suffix", "ui-test")
    page.fill("#job-epochs", "1")
    page.click("#job-form button[type=submit]")
    page.wait_for_selector("#job-detail:not([hidden])")
    job_id = page.text_content("#job-title")
    assert job_id.startswith("ftjob-")
    tab.shot("03-tuning-running")
    page.wait_for_selector("#job-detail[data-status='succeeded']", timeout=240_000)
    page.wait_for_selector(f"#job-table tr[data-id='{job_id}'] .status.succeeded")
    tuned = page.locator("#job-kv dd a").text_content()
    assert tuned.startswith("chat with ft:tiny-llama:ui-test:")
    points = int(page.get_attribute("#loss-chart", "data-points"))
    assert points >= 1, "the loss curve drew no metrics"
    events = page.locator("#job-events li").all_text_contents()
    assert any("training loss" in e for e in events)
    assert page.locator("#job-checkpoints li").count() >= 1
    assert tab.dialogs == []
    tab.shot("04-tuning-succeeded")

    # the tuned model is offered for chat and answers
    page.click("#job-kv dd a")
    page.wait_for_url("**/chat?model=ft*")
    page.wait_for_selector("#model-select option[value^='ft:tiny-llama:ui-test']", state="attached")
    assert page.input_value("#model-select").startswith("ft:tiny-llama:ui-test:")
    page.fill("#chat-input", "Where is my parcel?")
    page.click("#send")
    page.locator(".msg.assistant[data-done='1']").wait_for(timeout=120_000)
    assert page.locator(".msg.assistant.error").count() == 0
