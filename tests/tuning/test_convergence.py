"""Training to convergence: a held-out validation slice, the task metric, the best checkpoint, early stopping."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file
from tests.tuning.conftest import file_id
from tests.tuning.test_checkpoint_state import stop_after_step

from ladder.errors import InvalidInput
from ladder.tuning import checkpoints, hparams, jobs, leases, service, trainer, worker
from ladder.tuning.selection import BestSoFar
from ladder.tuning.task_metric import resolve_task, score

# A learning rate this small moves no weight measurably: neither the metric nor the loss can improve.
FROZEN = {"learning_rate_multiplier": 1e-4, "eval_every": 1, "checkpoint_every": 1, "n_epochs": 5}


def rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def metric_events(job_id: str) -> list[dict]:
    return [e.data for e in jobs.events(job_id) if e.type == "metrics"]


def adapter(path) -> dict:
    return load_file(path / "adapter_model.safetensors")


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_validation_slice_is_stratified_disjoint_and_configurable(tiny_model, tmp_path, make_chat):
    data = file_id(make_chat(tmp_path / "d.jsonl", 60))
    job = service.create_job(data, model=tiny_model, seed=3)
    d = service.job_dir(job.id)
    train, valid = rows(d / "train.jsonl"), rows(d / "valid.jsonl")
    # 10% of 60 is 6, raised to 20 where a fifth of the set allows it: 12, 4 per label.
    assert len(valid) == 12 and len(train) == 48
    assert Counter(r["messages"][-1]["content"] for r in valid) == {"billing": 4, "shipping": 4, "refund": 4}
    inputs = lambda rs: {r["messages"][1]["content"] for r in rs}  # noqa: E731
    assert not inputs(train) & inputs(valid)
    assert job.repro["n_valid_held_out_of_training"] == 12 and job.resolved["steps_per_epoch"] == 12
    assert job.resolved["task"] == "classification" and job.resolved["labels"] == ["billing", "refund", "shipping"]
    # With a slice to stop on, "auto" epochs allow several passes; early stopping ends them.
    assert job.resolved["n_epochs"] == 3 and job.resolved["early_stopping_patience"] == 2

    none = service.create_job(data, model=tiny_model, hyperparameters={"validation_split": 0}, seed=3)
    assert not rows(service.job_dir(none.id) / "valid.jsonl") and none.resolved["early_stopping_patience"] == 0
    counted = service.create_job(data, model=tiny_model, hyperparameters={"validation_split": 30}, seed=3)
    assert len(rows(service.job_dir(counted.id) / "valid.jsonl")) == 30
    with pytest.raises(InvalidInput, match="validation_split") as e:
        service.create_job(data, model=tiny_model, hyperparameters={"validation_split": 55})
    assert e.value.param == "validation_split"


def test_a_small_set_or_a_validation_file_holds_nothing_out(tiny_model, train_file, valid_file):
    small = service.create_job(file_id(train_file), model=tiny_model)
    assert len(rows(service.job_dir(small.id) / "train.jsonl")) == 12  # a 1-item slice would measure nothing
    given = service.create_job(file_id(train_file), validation_file=file_id(valid_file), model=tiny_model)
    d = service.job_dir(given.id)
    assert len(rows(d / "train.jsonl")) == 12 and len(rows(d / "valid.jsonl")) == 4


def test_the_automatic_batch_is_about_a_128th_of_the_set_and_sets_the_learning_rate():
    # a power of two from 4 to 32; the learning rate scales with its square root around 8
    sizes = {100: 4, 500: 4, 888: 8, 2000: 16, 5000: 32, 10**6: 32}
    for n, batch in sizes.items():
        hp = hparams.resolve({}, n, has_validation=True)
        assert hp["batch_size"] == batch, n
        assert hp["learning_rate"] == pytest.approx(hparams.BASE_LEARNING_RATE * hp["learning_rate_multiplier"])
    assert hparams.resolve({}, 888)["learning_rate"] == pytest.approx(2e-4)
    assert hparams.resolve({}, 2000)["learning_rate"] == pytest.approx(2e-4 * 2**0.5, rel=1e-3)
    assert hparams.resolve({"batch_size": 16}, 888)["batch_size"] == 16  # what the user asks wins


def test_the_task_is_found_from_the_answers():
    assert resolve_task({"task": "auto"}, ["a", "b", "a", "b"]) == {
        "task": "classification",
        "labels": ["a", "b"],
        "schema": None,
    }
    assert resolve_task({"task": "auto"}, ['{"x": 1}', '{"x": 2}'])["task"] == "extraction"
    assert resolve_task({"task": "auto"}, ["one long free answer", "another one", "a third"])["task"] == "none"
    with pytest.raises(InvalidInput, match="task must be one of"):
        resolve_task({"task": "ranking"}, ["a"])
    assert resolve_task({"labels": ["x", "y"]}, ["a long answer", "b", "c"])["labels"] == ["x", "y"]
    assert score("classification", ["Billing.", "nope"], ["billing", "refund"], ["billing", "refund"]).value == 0.5
    f1 = score("extraction", ['{"a": "1", "b": "2"}'], ['{"a": "1", "b": "3"}']).value
    assert f1 == pytest.approx(0.5)


def test_metric_events_stream_and_the_job_returns_its_best_checkpoint(tiny_model, train_file, valid_file, fast_hp):
    job = service.create_job(
        file_id(train_file),
        validation_file=file_id(valid_file),
        model=tiny_model,
        hyperparameters={**fast_hp, "early_stopping_patience": 0},
        seed=2,
    )
    done = worker.run_job(leases.claim_next("w"))
    assert done.status == "succeeded", done.error
    events = [m for m in metric_events(job.id) if "valid_loss" in m]
    # The eval steps (3 steps an epoch, eval_every 2): counted within each epoch, and at its end.
    assert [m["step"] for m in events] == [2, 3, 5, 6]
    assert all(0 <= m["valid_accuracy"] <= 1 and 0 <= m["valid_format"] <= 1 for m in events)
    best = events[-1]["best_step"]
    listed = {c.step for c in service.list_checkpoints(job.id)}
    assert best in listed and max(listed) == events[-1]["step"]  # the others stay listed
    served = adapter(service.job_dir(job.id) / "adapter")
    assert same(served, adapter(checkpoints.ckpt_dir(service.job_dir(job.id), best)))


def test_early_stopping_after_patience_evals_without_improvement(tiny_model, train_file, valid_file, fast_hp):
    hp = {**fast_hp, **FROZEN, "early_stopping_patience": 2}
    job = service.create_job(
        file_id(train_file), validation_file=file_id(valid_file), model=tiny_model, hyperparameters=hp, seed=2
    )
    assert job.resolved["total_steps"] == 15
    done = worker.run_job(leases.claim_next("w"))
    assert done.status == "succeeded", done.error
    # step 1 is the best there will be; steps 2 and 3 do not improve on it: stop there
    assert [m["step"] for m in metric_events(job.id)] == [1, 2, 3]
    assert any("Early stopping at step 3" in e.message for e in jobs.events(job.id))


class Scripted:
    """A task metric that reads a fixed sequence, so which eval is best is known in advance."""

    key = "valid_accuracy"

    def __init__(self, values: list[float]):
        self.values = list(values)

    def reader(self, model, device: str, data: list) -> None:
        return None  # nothing to read off the validation-loss pass

    def __call__(self, model, device: str, reader=None) -> dict:
        return {self.key: self.values.pop(0)}


def test_the_trainer_selects_the_checkpoint_with_the_best_metric(tiny_model_dir, tmp_path, fast_hp):
    from transformers import AutoTokenizer

    from ladder.tuning.encode import encode_all

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    convs = lambda n, o: [  # noqa: E731
        [
            {"role": "user", "content": f"message {i} about {'ab'[i % 2]}"},
            {"role": "assistant", "content": "ab"[i % 2]},
        ]
        for i in range(o, o + n)
    ]
    train, valid = encode_all(tok, convs(8, 0), 64), encode_all(tok, convs(2, 50), 64)
    hp = hparams.resolve({**fast_hp, "eval_every": 1, "early_stopping_patience": 0}, 8, has_validation=True)
    assert hp["total_steps"] == 4
    result = trainer.train(
        tmp_path, tiny_model_dir, train, valid, hp, 1, tok.pad_token_id, meter=Scripted([0.2, 0.7, 0.4, 0.5])
    )
    assert result.best_step == 2 and result.metrics["best_valid_accuracy"] == 0.7 and not result.stopped_early
    assert same(adapter(result.adapter_dir), adapter(checkpoints.ckpt_dir(tmp_path, 2)))
    assert not same(adapter(result.adapter_dir), adapter(checkpoints.ckpt_dir(tmp_path, 4)))


def test_a_tie_in_the_metric_goes_to_the_lower_validation_loss():
    best = BestSoFar()
    assert best.update(1, 0.5, 2.0) and not best.update(2, 0.5, 2.1)
    assert best.update(3, 0.5, 1.5) and best.step == 3
    assert not best.update(4, 0.4, 0.1) and best.bad_evals == 3
    assert best.exhausted(2) and not best.exhausted(4) and not best.exhausted(0)
    assert BestSoFar.from_state(best.state()) == best


def test_only_a_better_metric_resets_the_patience():
    """A converged classifier's validation loss keeps creeping down: that picks the checkpoint, not more epochs."""
    best = BestSoFar()
    assert best.update(1, 0.9, 0.5) and best.bad_evals == 0
    assert best.update(2, 0.9, 0.4) and best.step == 2 and best.bad_evals == 1
    assert best.update(3, 0.9, 0.3) and best.step == 3 and best.exhausted(2)
    assert best.update(4, 0.95, 0.6) and best.bad_evals == 0 and not best.exhausted(1)
    without_metric = BestSoFar()
    assert without_metric.update(1, None, 0.5) and without_metric.update(2, None, 0.4)
    assert without_metric.bad_evals == 0 and not without_metric.update(3, None, 0.45)
    assert without_metric.bad_evals == 1


def test_resume_keeps_the_best_so_far_and_the_patience_count(tiny_model, train_file, valid_file, fast_hp, monkeypatch):
    hp = {**fast_hp, **FROZEN, "early_stopping_patience": 3}
    job = service.create_job(
        file_id(train_file), validation_file=file_id(valid_file), model=tiny_model, hyperparameters=hp, seed=2
    )
    stop = stop_after_step(monkeypatch, 2)
    assert worker.run_job(leases.claim_next("w1"), stop).status == "queued"
    monkeypatch.undo()
    state = checkpoints.load_state(checkpoints.ckpt_dir(service.job_dir(job.id), 2) / checkpoints.STATE)
    assert state["best"]["step"] == 1 and state["best"]["bad_evals"] == 1
    done = worker.run_job(leases.claim_next("w2"))
    assert done.status == "succeeded", done.error
    # A resume that forgot the count would take step 3 as a fresh best and run to step 6.
    assert any("Early stopping at step 4" in e.message and "step 1)" in e.message for e in jobs.events(job.id))
    assert same(adapter(service.job_dir(job.id) / "adapter"), adapter(checkpoints.ckpt_dir(service.job_dir(job.id), 1)))


def test_the_report_curve_shows_the_metric_and_the_returned_checkpoint():
    from ladder.climb.tune_plot import validation_curve

    png = validation_curve([(1, 2.0), (2, 1.5), (3, 1.2)], "valid_accuracy", [(2, 0.4), (3, 0.6)], best_step=3)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):  # a curve needs its points
        validation_curve([(1, 2.0)], "valid_accuracy", [])


def test_the_cli_flags_set_the_slice_and_the_patience(tiny_model, tmp_path, make_chat, monkeypatch):
    from typer.testing import CliRunner

    from ladder.cli.main import app

    monkeypatch.setattr(service, "ensure_worker", lambda: None)
    data = make_chat(tmp_path / "d.jsonl", 60)
    argv = ["tune", str(data), "--model", tiny_model, "--detach", "--validation-split", "0.25"]
    res = CliRunner().invoke(app, [*argv, "--early-stopping-patience", "1"])
    assert res.exit_code == 0, res.output
    (job,) = service.list_jobs()
    assert job.resolved["early_stopping_patience"] == 1 and job.repro["n_valid_held_out_of_training"] == 15
    bad = CliRunner().invoke(app, [*argv[:-1], "some"])
    assert bad.exit_code != 0 and "--validation-split" in bad.output


def test_the_task_meter_decodes_the_slice_and_leaves_the_model_training(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ladder.tuning.task_metric import TaskMeter

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).train()
    answer = '{"name": "Ada", "city": "London"}'
    convs = [[{"role": "user", "content": f"extract {i}"}, {"role": "assistant", "content": answer}] for i in range(3)]
    meter = TaskMeter({"task": "extraction", "schema": None}, convs, tok)
    assert meter.key == "valid_f1" and meter.max_new_tokens > len(tok(answer)["input_ids"])
    got = meter(model, "cpu")
    assert set(got) == {"valid_f1", "valid_format"} and 0 <= got["valid_f1"] <= 1
    assert model.training  # the trainer's next step still has dropout
    with pytest.raises(ValueError, match="no task metric"):
        TaskMeter({"task": "none"}, convs, tok)


def test_the_classification_meter_scores_what_constrained_decoding_answers(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ladder.models.constraints import Constraint
    from ladder.models.torch_backend import TorchBackend
    from ladder.models.types import ChatRequest, GenerationParams, Message
    from ladder.tuning.task_metric import TaskMeter

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).train()
    labels = ["card", "card arrival", "refund"]
    ask = lambda i: {"role": "user", "content": f"question {i}"}  # noqa: E731
    convs = [[ask(i), {"role": "assistant", "content": labels[i % 3]}] for i in range(9)]
    meter = TaskMeter({"task": "classification", "labels": labels}, convs, tok)
    got = meter(model, "cpu")
    assert model.training
    backend = TorchBackend("check", model.eval(), tok, torch.device("cpu"))
    params = GenerationParams(max_tokens=8, constraint=Constraint.choice(labels))
    reqs = [ChatRequest([Message(**m) for m in c[:-1]], params) for c in convs]
    decoded = [r.text for r in backend.chat_batch(reqs)]
    want = sum(d == c[-1]["content"] for d, c in zip(decoded, convs, strict=True)) / len(convs)
    assert got == {"valid_accuracy": want, "valid_format": 1.0}
