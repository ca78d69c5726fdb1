"""Label probabilities on the tiny random Llama: a distribution over the label set, the same in run and run_batch."""

from __future__ import annotations

import math

import pytest

from ladder.models import label_scores, service
from ladder.models.constraints import Constraint
from ladder.models.types import Message
from ladder.pipelines.config import PipelineConfig
from ladder.pipelines.pipeline import Pipeline
from tests.server import conftest as server_fixtures

make_server = server_fixtures.make_server  # the real uvicorn server the API tests use

# One- and multi-token labels, so the length normalisation and the batched continuations both matter.
LABELS = ["billing", "card arrival", "lost or stolen card", "refund"]
INPUTS = ["my card has not come", "I was charged twice", "where is my refund", "someone took my wallet"]


def _pipe(model: str, **kw) -> Pipeline:
    cfg = {"model": model, "parser": {"kind": "label", "labels": LABELS}, "max_tokens": 6}
    cfg.update(kw)
    return Pipeline(PipelineConfig.from_dict(cfg))


def _by_hand(model: str, messages: list[Message], label: str) -> float:
    """A label's mean token log-probability from one plain forward pass over prompt + label."""
    import torch

    b = service.open_backend(model)
    prompt = b.encode(messages)
    ids = b.tok.encode(label, add_special_tokens=False)
    with torch.inference_mode():
        logits = b.model(input_ids=torch.tensor([prompt + ids])).logits[0].float().log_softmax(-1)
    return sum(float(logits[len(prompt) + j - 1, t]) for j, t in enumerate(ids)) / len(ids)


def test_probs_sum_to_one_and_match_a_plain_forward_pass(tiny_model):
    r = _pipe(tiny_model).run(INPUTS[0])
    assert set(r.label_probs) == set(LABELS)
    assert abs(sum(r.label_probs.values()) - 1) < 1e-4
    assert r.confidence == max(r.label_probs.values())
    # A greedy label answer comes out of the scoring pass itself: no separate scoring time.
    assert r.scoring_ms == 0 and r.latency_ms > 0
    # The shared-prefix batched pass scores what a separate full forward of each label scores.
    ((msgs, _),) = _pipe(tiny_model).prepare_batch([INPUTS[0]])
    want = label_scores.softmax([_by_hand(tiny_model, msgs, label) for label in LABELS])
    assert [r.label_probs[label] for label in LABELS] == pytest.approx(want, abs=1e-4)


def test_run_and_run_batch_agree(tiny_model):
    pipe = _pipe(tiny_model)
    batch = pipe.run_batch(INPUTS, batch_size=4)
    for text, b in zip(INPUTS, batch, strict=True):
        one = pipe.run(text)
        assert one.label_probs == pytest.approx(b.label_probs, abs=1e-4)
        assert abs(sum(b.label_probs.values()) - 1) < 1e-4


def test_the_greedy_first_token_is_the_most_probable_single_token_label(tiny_model):
    """For one-token labels the top probability is the label greedy constrained decoding picks first."""
    import torch

    labels = ["yes", "no", "maybe", "later"]
    pipe = _pipe(tiny_model, parser={"kind": "label", "labels": labels})
    b = service.open_backend(tiny_model)
    assert all(len(b.tok.encode(x, add_special_tokens=False)) == 1 for x in labels)
    for text in INPUTS:
        ((msgs, _),) = pipe.prepare_batch([text])
        with torch.inference_mode():
            logits = b.model(input_ids=torch.tensor([b.encode(msgs)])).logits[0, -1]
        ids = [b.tok.encode(x, add_special_tokens=False)[0] for x in labels]
        greedy = labels[max(range(len(labels)), key=lambda i: float(logits[ids[i]]))]
        probs = pipe.run(text).label_probs
        assert max(probs, key=probs.get) == greedy


# "card" is a token prefix of "card arrival": there greedy decoding chooses between EOS and going on.
TRIE_LABELS = ["card", "card arrival", "card payment fee", "lost or stolen card", "refund", "billing"]
MANY = [f"{w} question number {i}" for i in range(12) for w in ("card", "refund")]


def test_the_scoring_pass_answers_what_greedy_constrained_decoding_generates(tiny_model):
    """Each round drops the label the last one chose, so every label and trie branch gets picked once."""
    from ladder.models.types import ChatRequest

    b = service.open_backend(tiny_model)
    assert b.tok.encode("card arrival", add_special_tokens=False)[:1] == b.tok.encode("card", add_special_tokens=False)
    labels, picked = list(TRIE_LABELS), []
    while labels:
        pipe = _pipe(tiny_model, parser={"kind": "label", "labels": labels})
        answered = pipe.run_batch(MANY, batch_size=8)
        reqs = [ChatRequest(msgs, pipe.config.params) for msgs, _ in pipe.prepare_batch(MANY)]
        decoded = [r.text for r in service.chat_batch(tiny_model, reqs)]
        assert [r.text for r in answered] == decoded
        assert all(r.batch_n == 8 and r.usage.completion_tokens >= 1 and r.valid for r in answered)
        picked.append(decoded[0])
        labels.remove(decoded[0])
    assert sorted(picked) == sorted(TRIE_LABELS)


def test_greedy_choice_ends_a_label_where_eos_beats_going_on():
    conts = [[5], [5, 6], [7]]  # "card", "card arrival", "refund"
    eos = {0}
    go_on = {(): {5: -0.1, 7: -2.0}, (5,): {6: -0.5, 0: -1.0}}
    assert label_scores.greedy_choice(conts, go_on, eos) == 1
    stop = {(): {5: -0.1, 7: -2.0}, (5,): {6: -1.5, 0: -1.0}}
    assert label_scores.greedy_choice(conts, stop, eos) == 0
    other = {(): {5: -3.0, 7: -2.0}, (5,): {6: -1.5, 0: -1.0}}
    assert label_scores.greedy_choice(conts, other, eos) == 2
    tie = {(): {5: -1.0, 7: -1.0}, (5,): {6: -1.5, 0: -1.0}}
    assert label_scores.greedy_choice(conts, tie, eos) == 0  # argmax takes the lowest token id


def test_batched_passes_score_as_one_prompt_at_a_time(tiny_model):
    """Prompts of different lengths (left padding) and a shared system prompt give each prompt's own scores."""
    b = service.open_backend(tiny_model)
    pipe = _pipe(tiny_model, system_prompt="Sort the message into one of the labels.")
    prompts = [b.encode(msgs) for msgs, _ in pipe.prepare_batch(INPUTS + ["a much longer message " * 6])]
    together = label_scores.torch_passes(b, prompts, TRIE_LABELS, batch=5)
    for prompt, got in zip(prompts, together, strict=True):
        (alone,) = label_scores.torch_passes(b, [prompt], TRIE_LABELS)
        assert got.scores == pytest.approx(alone.scores, abs=1e-4) and got.choice == alone.choice
        assert got.prompt_tokens == len(prompt)


def test_cached_answers_still_carry_probs(tiny_model):
    pipe = _pipe(tiny_model)
    first = pipe.run_batch(INPUTS[:2], use_cache=True)
    again = pipe.run_batch(INPUTS[:2], use_cache=True)
    assert all(r.cached for r in again)
    assert [r.label_probs for r in again] == [pytest.approx(r.label_probs, abs=1e-6) for r in first]


def test_stream_ends_with_the_probs(tiny_model):
    *_, last = _pipe(tiny_model).stream(INPUTS[1])
    assert abs(sum(last.label_probs.values()) - 1) < 1e-4


def test_free_text_pipelines_carry_none(tiny_model):
    r = Pipeline(PipelineConfig(model=tiny_model, max_tokens=3)).run("hello")
    assert r.label_probs is None and r.confidence is None and not r.abstained and r.scoring_ms == 0


def test_abstain_below_returns_the_fallback_label(tiny_model):
    # Four labels on a random model: the top probability is far under 0.99 and well above 0.01.
    sure = _pipe(tiny_model, abstain_below=0.01).run(INPUTS[0])
    assert not sure.abstained and sure.parsed != "needs_review"
    unsure = _pipe(tiny_model, abstain_below=0.99, abstain_label="to_a_person").run(INPUTS[0])
    assert unsure.abstained and unsure.parsed == "to_a_person" and unsure.text == "to_a_person"
    assert unsure.confidence < 0.99 and unsure.label_probs == pytest.approx(sure.label_probs)


def test_softmax_is_stable_for_very_negative_scores():
    p = label_scores.softmax([-1000.0, -1001.0])
    assert p == pytest.approx([1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))])


def test_the_bots_api_returns_the_probs(make_server, tiny_model):
    import httpx

    srv = make_server()
    h = {"Authorization": f"Bearer {srv.admin_key}"}
    config = {"model": tiny_model, "parser": {"kind": "label", "labels": LABELS}, "max_tokens": 6}
    for name, extra in (("triage", {}), ("careful", {"abstain_below": 0.99, "abstain_label": "to_a_person"})):
        r = httpx.post(srv.url + "/api/bots", json={"name": name, "config": config | extra}, headers=h)
        assert r.status_code == 200, r.text
    native = httpx.post(srv.url + "/api/bots/triage/chat", json={"messages": INPUTS[0]}, headers=h, timeout=60).json()
    assert set(native["label_probs"]) == set(LABELS) and abs(sum(native["label_probs"].values()) - 1) < 1e-4
    assert native["confidence"] == max(native["label_probs"].values()) and native["abstained"] is False
    ask = [{"role": "user", "content": INPUTS[0]}]
    sdk = srv.client().chat.completions.create(model="bot:triage", messages=ask)
    probs = sdk.choices[0].model_extra["ladder_label_probs"]
    assert probs == pytest.approx(native["label_probs"], abs=1e-4)
    chunks = list(srv.client().chat.completions.create(model="bot:triage", messages=ask, stream=True))
    streamed = [c.model_extra["ladder_label_probs"] for c in chunks if "ladder_label_probs" in (c.model_extra or {})]
    assert streamed == [pytest.approx(native["label_probs"], abs=1e-4)]  # once, in the citations chunk
    routed = srv.client().chat.completions.create(model="bot:careful", messages=ask)
    assert routed.choices[0].message.content == "to_a_person" and routed.choices[0].model_extra["ladder_abstained"]
    bad = httpx.post(srv.url + "/api/bots", json={"name": "x", "config": config | {"abstain_below": 1.5}}, headers=h)
    assert bad.status_code in (400, 422) and "abstain_below" in bad.text


@pytest.mark.slow
def test_llamacpp_scores_agree_with_torch_and_leave_generation_as_it_was(ladder_home):
    """The real SmolLM2: llama.cpp (Q4 weights, shared label prefixes walked once) and torch agree closely."""
    from ladder.models.types import ChatRequest, GenerationParams

    name = "smollm2-135m-instruct"
    labels = ["billing", "card arrival", "card payment", "card payment fee", "lost or stolen card", "refund"]
    msgs = [
        Message("system", "Classify the message. Reply with one of: " + ", ".join(labels)),
        Message("user", "I was charged twice for my order"),
    ]
    req = ChatRequest(msgs, GenerationParams(max_tokens=8))
    before = service.chat(name, req).text
    cpp = label_scores.label_probs(name, msgs, labels, backend="llamacpp")
    # Scoring moved the context past the prompt: the next generation must not sample from stale logits.
    assert service.chat(name, req).text == before
    torch_p = label_scores.label_probs(name, msgs, labels, backend="torch")
    assert abs(sum(cpp.values()) - 1) < 1e-4
    assert cpp == pytest.approx(torch_p, abs=0.1)
    # Every label as its own sequence in one batch gives the scores of one label after another.
    b = service.open_backend(name, backend="llamacpp")
    assert b.seq_slots > len(labels)
    one_batch = label_scores.llamacpp_scores(b, msgs, labels)
    slots, b.seq_slots = b.seq_slots, 1
    try:
        by_label = label_scores.llamacpp_scores(b, msgs, labels)
    finally:
        b.seq_slots = slots
    assert one_batch == pytest.approx(by_label, abs=1e-3)
    # Nothing cached: the whole prompt goes into the labels' batch; then a prompt longer than the
    # batch has room for beside the labels: its head first, the rest with the labels.
    b.llm.reset()
    assert label_scores.llamacpp_scores(b, msgs, labels) == pytest.approx(by_label, abs=1e-3)
    n_batch = b.llm.n_batch
    b.llm.reset()
    b.llm.n_batch = 40
    try:
        assert label_scores.llamacpp_scores(b, msgs, labels) == pytest.approx(by_label, abs=1e-3)
    finally:
        b.llm.n_batch = n_batch
    assert service.chat(name, req).text == before
    # The scoring pass answers what constrained greedy decoding generates.
    choose = ChatRequest(msgs, GenerationParams(max_tokens=8, constraint=Constraint.choice(labels)))
    ((resp, scores),) = b.answer_labels([choose], labels)
    assert resp.text == service.chat(name, choose, backend="llamacpp").text
    assert scores == pytest.approx(one_batch, abs=1e-3)
