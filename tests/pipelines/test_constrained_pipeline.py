"""A pipeline's parser becomes the decoding constraint of every request it sends (run, run_batch, stream)."""

from __future__ import annotations

import pytest

from ladder.errors import InvalidInput
from ladder.models import service as model_service
from ladder.models.constraints import Constraint
from ladder.models.types import ChatRequest, Message
from ladder.pipelines import cache
from ladder.pipelines.config import PipelineConfig
from ladder.pipelines.pipeline import Pipeline

LABELS = ["billing", "card arrival", "Lost_or_stolen"]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _cfg(model: str = "tiny-llama", **kw) -> PipelineConfig:
    base = {"model": model, "parser": {"kind": "label", "labels": LABELS}, "max_tokens": 4}
    base.update(kw)
    return PipelineConfig.from_dict(base)


@pytest.mark.parametrize(
    ("parser", "expected"),
    [
        ({"kind": "label", "labels": LABELS}, Constraint.choice(LABELS)),
        ({"kind": "json", "schema": SCHEMA}, Constraint.json_schema(SCHEMA)),
        ({"kind": "json"}, Constraint.json_schema(None)),
        ({"kind": "regex", "pattern": r"\d{3}"}, Constraint.regex(r"\d{3}")),
        ({"kind": "text"}, None),
    ],
)
def test_closed_formats_are_constrained_by_default(parser, expected):
    cfg = _cfg(parser=parser)
    assert cfg.constraint == expected
    assert Pipeline(cfg).request([Message("user", "hi")]).params.constraint == expected
    assert cfg.is_constrained is (expected is not None)


def test_the_label_constraint_is_the_exact_label_strings():
    c = _cfg().constraint
    assert c.kind == "choice" and c.choices == tuple(LABELS)  # not normalised: "Lost_or_stolen" as written


def test_constrained_false_decodes_freely_and_changes_the_fingerprint():
    free = _cfg(constrained=False)
    assert free.constraint is None and free.params.constraint is None
    assert free.fingerprint() != _cfg().fingerprint()
    assert _cfg(constrained=True).constraint == _cfg().constraint


def test_stored_versions_without_the_field_keep_working():
    stored = _cfg().as_dict()
    for new in ("constrained", "abstain_below", "abstain_label"):
        stored.pop(new)
    old = PipelineConfig.from_dict(stored)
    assert old.constrained is None and old.constraint == Constraint.choice(LABELS)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"constrained": True, "parser": {"kind": "text"}}, "closed output format"),
        ({"constrained": "yes"}, "constrained must be true or false"),
        ({"abstain_below": 1.0}, "abstain_below must be a probability"),
        ({"abstain_below": 0}, "abstain_below must be a probability"),
        ({"abstain_below": float("nan")}, "abstain_below must be a probability"),
        ({"abstain_below": True}, "abstain_below must be a probability"),
        ({"abstain_below": 0.5, "parser": {"kind": "json"}}, "needs a label parser"),
        ({"abstain_label": " "}, "abstain_label must be non-empty"),
        ({"parser": {"kind": "label", "labels": ["a", ""]}}, r"labels\[1\] must be non-empty"),
    ],
)
def test_bad_output_settings_are_refused_with_the_field(changes, match):
    with pytest.raises(InvalidInput, match=match):
        _cfg(**changes)


def test_the_cache_key_tells_constrained_from_free(tiny_model):
    msgs = [Message("user", "hi")]
    k_on = cache.cache_key(tiny_model, None, ChatRequest(msgs, _cfg(tiny_model).params))
    k_off = cache.cache_key(tiny_model, None, ChatRequest(msgs, _cfg(tiny_model, constrained=False).params))
    assert k_on != k_off


@pytest.fixture
def sent(monkeypatch) -> list[ChatRequest]:
    """Every request the pipeline hands the model service (which still answers it)."""
    seen: list[ChatRequest] = []
    for name in ("chat", "stream"):
        real = getattr(model_service, name)

        def spy(model, req, *a, _real=real, **kw):
            seen.append(req)
            return _real(model, req, *a, **kw)

        monkeypatch.setattr(model_service, name, spy)
    for name in ("chat_batch", "answer_labels"):  # a greedy label pipeline is answered by its scoring pass
        real_batch = getattr(model_service, name)

        def spy_batch(model, reqs, *a, _real=real_batch, **kw):
            seen.extend(reqs)
            return _real(model, reqs, *a, **kw)

        monkeypatch.setattr(model_service, name, spy_batch)
    return seen


@pytest.mark.parametrize("constrained", [None, False])
def test_run_run_batch_and_stream_send_the_constraint(tiny_model, sent, constrained):
    pipe = Pipeline(_cfg(tiny_model, constrained=constrained))
    pipe.run("my card has not come")
    pipe.run_batch(["a", "b", "c"], batch_size=3)
    list(pipe.stream("where is my card"))
    want = None if constrained is False else Constraint.choice(LABELS)
    assert len(sent) == 5
    assert all(r.params.constraint == want for r in sent)


def _pairs_file(path, pairs):
    import json

    path.write_text("".join(json.dumps({"input": i, "expected": o}) + "\n" for i, o in pairs))
    return path


CLIMB_TRAIN = [
    (f"message {i} about {'bills' if i % 2 else 'parcels'}", "billing" if i % 2 else "shipping") for i in range(8)
]
CLIMB_TEST = [("my bill is wrong", "billing"), ("parcel late", "shipping")]


@pytest.mark.parametrize(("flags", "word"), [([], "yes"), (["--free"], "no")])
def test_ladder_climb_constrains_each_rung_unless_free(tiny_model, tmp_path, flags, word):
    from pathlib import Path

    from typer.testing import CliRunner

    from ladder.cli.main import app

    train = _pairs_file(tmp_path / "train.jsonl", CLIMB_TRAIN)
    test = _pairs_file(tmp_path / "test.jsonl", CLIMB_TEST)
    out = CliRunner().invoke(
        app,
        ["climb", "--train", str(train), "--test", str(test), "--model", tiny_model, "--target", "accuracy=0"]
        + flags
        + ["--batch-size", "2"],
        env={"COLUMNS": "250"},
    )
    assert out.exit_code == 0, out.output
    report = next(Path(p) for p in out.output.split() if p.endswith("report.html")).parent
    md = (report / "report.md").read_text()
    # The ladder table comes first (the routing table below it has the same first columns).
    lines = [line for line in md.splitlines() if line.startswith(("| rung", "| prompt"))]
    header, prompt_row = lines[:2]
    cells = dict(zip(header.split("|"), prompt_row.split("|"), strict=True))
    assert cells[" constrained "].strip() == word
    assert float(cells[" ECE "]) >= 0.0  # the label rung's probabilities were scored and calibrated
    assert "Routing low-confidence answers to a person" in md
    assert {"reliability.png", "coverage.png"} <= {p.name for p in report.iterdir()}


def test_label_answers_stay_in_the_set_on_the_tiny_model_and_free_ones_do_not(tiny_model):
    """End to end: the pipeline's constraint reaches the backend (a random model, sampled at temperature 1)."""
    texts = [f"message number {i}" for i in range(12)]
    on = Pipeline(_cfg(tiny_model, max_tokens=12, temperature=1.0, seed=7)).run_batch(texts, batch_size=4)
    assert all(r.valid and r.text in LABELS for r in on), [r.text for r in on]
    off = Pipeline(_cfg(tiny_model, max_tokens=12, temperature=1.0, seed=7, constrained=False)).run_batch(texts)
    assert not all(r.valid for r in off)  # what the constraint buys on a model that knows nothing


def test_ladder_bots_create_and_edit_take_the_output_settings(tiny_model):
    from typer.testing import CliRunner

    from ladder.cli.main import app
    from ladder.pipelines import service

    runner = CliRunner()
    args = ["bots", "create", "desk", "--model", tiny_model, "--labels", "billing,shipping", "--free"]
    r = runner.invoke(app, args + ["--abstain-below", "0.6", "--abstain-label", "human"])
    assert r.exit_code == 0, r.output
    c = service.get_bot("desk").config
    assert (c.constrained, c.abstain_below, c.abstain_label, c.constraint) == (False, 0.6, "human", None)
    assert runner.invoke(app, ["bots", "edit", "desk", "--constrained"]).exit_code == 0
    assert service.get_bot("desk").config.constraint == Constraint.choice(["billing", "shipping"])
    bad = runner.invoke(app, ["bots", "edit", "desk", "--abstain-below", "2"])
    assert bad.exit_code != 0 and service.get_bot("desk").version == 2
