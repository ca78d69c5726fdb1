"""Bots: stored by name, every change a new version; the pipeline answers chat, batch and stream alike."""

import pytest

from ladder.errors import Conflict, InvalidInput, NotFound
from ladder.models.types import Delta
from ladder.pipelines import service
from ladder.pipelines.config import PipelineConfig
from ladder.pipelines.pipeline import PipelineResult
from ladder.store.db import get_db


def _cfg(model, **kw):
    base = dict(
        model=model,
        system_prompt="Classify.",
        output_instruction="Reply with a or b.",
        parser={"kind": "label", "labels": ["a", "b"]},
        max_tokens=4,
    )
    base.update(kw)
    return base


def test_versions_are_kept_and_readable(tiny_model):
    b1 = service.create_bot("triage", _cfg(tiny_model))
    assert b1.id.startswith("bot-") and b1.version == 1
    b2 = service.edit_bot("triage", {"system_prompt": "Classify carefully."})
    assert (b2.version, b2.id) == (2, b1.id)
    assert service.get_bot("triage").config.system_prompt == "Classify carefully."
    assert service.get_bot("triage", 1).config.system_prompt == "Classify."
    assert service.get_bot("triage@1").version == 1
    assert service.get_bot(b1.id).version == 2
    assert [p.version for p in service.bot_versions("triage")] == [1, 2]
    assert [p.name for p in service.list_bots()] == ["triage"]


def test_bad_bots_are_refused_with_reasons(tiny_model):
    service.create_bot("triage", _cfg(tiny_model))
    with pytest.raises(Conflict, match="already exists"):
        service.create_bot("triage", _cfg(tiny_model))
    with pytest.raises(NotFound, match="unknown model"):
        service.create_bot("other", _cfg("no-such-model"))
    with pytest.raises(InvalidInput, match="unknown pipeline setting"):
        service.edit_bot("triage", {"sytem_prompt": "typo"})
    with pytest.raises(NotFound, match="bots: triage"):
        service.get_bot("nope")
    with pytest.raises(InvalidInput, match="bot name"):
        service.create_bot("bad name!", _cfg(tiny_model))
    assert service.get_bot("triage").version == 1  # nothing half-written


def test_prompt_contains_instruction_and_shots(tiny_model):
    cfg = PipelineConfig.from_dict(
        _cfg(tiny_model, few_shot=[{"input": "x1", "output": "a"}, {"input": "x2", "output": "b"}], few_shot_k=1)
    )
    p = service.create_bot("t", cfg)
    ((msgs, hits),) = p.prepare_batch(["hello"])
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user"]
    assert "Reply with a or b." in msgs[0].content and msgs[1].content == "x1" and msgs[-1].content == "hello"
    assert hits == []


def test_run_stream_and_batch_share_one_path(tiny_model):
    p = service.create_bot("t", _cfg(tiny_model, backend="torch"))
    r = p.run([{"role": "user", "content": "hi"}])
    assert isinstance(r, PipelineResult) and r.usage.completion_tokens >= 1 and r.latency_ms > 0
    assert r.parsed in (None, "a", "b")
    parts = list(p.stream("hi"))
    assert isinstance(parts[-1], PipelineResult) and all(isinstance(x, Delta) for x in parts[:-1])
    assert parts[-1].text == "".join(x.text for x in parts[:-1]) == r.text
    batch = p.run_batch(["hi", "hello there"], batch_size=2)
    assert len(batch) == 2 and batch[0].text == r.text


def test_cache_makes_a_rerun_free(tiny_model):
    p = service.create_bot("t", _cfg(tiny_model, backend="torch"))
    first = p.run_batch(["one", "two"], use_cache=True)
    calls = get_db().one("SELECT COUNT(*) FROM usage")[0]
    again = p.run_batch(["one", "two"], use_cache=True)
    assert [r.text for r in again] == [r.text for r in first] and all(r.cached for r in again)
    assert get_db().one("SELECT COUNT(*) FROM usage")[0] == calls  # nothing generated or metered
    changed = service.edit_bot("t", {"system_prompt": "Different."})
    assert not any(r.cached for r in changed.run_batch(["one"], use_cache=True))


def test_batches_group_similar_lengths_and_answers_keep_their_order(tiny_model, monkeypatch):
    from ladder.models import service as models

    p = service.create_bot("t", _cfg(tiny_model, backend="torch"))
    passes: list[list[str]] = []
    real = models.answer_labels  # a greedy label bot: answered by the label scoring pass

    def spy(name, requests, *a, **kw):
        passes.append([r.messages[-1].content for r in requests])
        return real(name, requests, *a, **kw)

    monkeypatch.setattr(models, "answer_labels", spy)
    inputs = ["a " * 30, "b", "c " * 31, "d " * 2]
    batch = p.run_batch(inputs, batch_size=2)
    assert passes == [["b", "d " * 2], ["a " * 30, "c " * 31]]  # short with short, long with long
    one = [p.run(x) for x in inputs]
    assert [r.text for r in batch] == [r.text for r in one]  # each answer is its own input's
    assert [r.batch_n for r in batch] == [2, 2, 2, 2] and one[0].batch_n == 1
