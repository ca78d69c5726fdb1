"""Tuned-model quality: ladder's fine-tune rung vs a plain transformers + peft script, same data, one run.

    python bench/tune_quality.py [--limit-train N] [--limit-test N] [--max-epochs N] [--threads N]

Data: the 10 alphabetically first intents of BANKING77 (../shared/datasets/banking77), at most
100 training rows per intent in file order (987 rows) and all 400 of their test rows. Both sides
start from the default model (SmolLM2-135M-Instruct, the packaged GGUF de-quantised as ladder
does) with the same prompt (a one-line system prompt, the question, the intent name as answer).

- reference: transformers `Trainer` + peft, LoRA r=16 (alpha 32, dropout 0.05) on all linear
  layers, loss on the answer tokens, batch 8, lr 2e-4 cosine, a fixed 2 epochs; greedy, free decoding.
- ladder: the climb's fine-tune rung as a user gets it (the tuning service and its worker: a
  validation slice held out of the training rows, the task metric per eval, early stopping, the
  best checkpoint), then scored by an eval of the label pipeline it is served with.

Both are scored the same way: accuracy (the pipeline's label normalisation) and format
compliance (the output is exactly one label). Wall time covers training and scoring; the
ratio is ladder / reference. `--limit-train/--limit-test` take a slice spread over the intents
(for checking the script); `--max-epochs` caps both sides' epochs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "banking77"
SYSTEM = "Classify the customer's banking question. Answer with the category name only."
N_INTENTS, PER_INTENT = 10, 100
REFERENCE = {"epochs": 2, "batch": 8, "lr": 2e-4, "r": 16, "alpha": 32, "dropout": 0.05}
LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def load(limit_train: int | None, limit_test: int | None) -> tuple[list[str], list[tuple], list[tuple]]:
    """(intents, train rows, test rows) as (question, intent) pairs."""
    if not (DATA / "categories.json").exists():
        sys.exit(f"BANKING77 not found under {DATA}: this benchmark needs ../shared/datasets/banking77")
    intents = sorted(json.loads((DATA / "categories.json").read_text()))[:N_INTENTS]

    def rows(name: str, per_intent: int | None) -> list[tuple]:
        seen: dict[str, int] = {}
        out = []
        with open(DATA / name, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                c = r["category"]
                if c in intents and (per_intent is None or seen.get(c, 0) < per_intent):
                    seen[c] = seen.get(c, 0) + 1
                    out.append((r["text"], c))
        return out

    return intents, spread(rows("train.csv", PER_INTENT), limit_train), spread(rows("test.csv", None), limit_test)


def spread(rows: list[tuple], limit: int | None) -> list[tuple]:
    """The first `limit` rows taken in turn from each intent (file order within one), or all rows."""
    if limit is None or limit >= len(rows):
        return rows
    by: dict[str, list[tuple]] = {}
    for r in rows:
        by.setdefault(r[1], []).append(r)
    out, i = [], 0
    while len(out) < limit:
        out += [v[i] for v in by.values() if i < len(v)][: limit - len(out)]
        i += 1
    return out


def conversation(question: str, intent: str | None = None) -> list[dict]:
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    return msgs + ([{"role": "assistant", "content": intent}] if intent else [])


def max_new_tokens(tok, intents: list[str]) -> int:
    return max(len(tok(x, add_special_tokens=False)["input_ids"]) for x in intents) + 4


def run_reference(base_dir: str, intents: list[str], train: list, test: list, epochs: int) -> dict:
    """The plain recipe: Trainer + peft, then batched greedy generation with free decoding."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from ladder.tuning.encode import encode_all
    from ladder.tuning.task_metric import score

    t0 = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = AutoTokenizer.from_pretrained(base_dir)
    data = [
        {"input_ids": e.input_ids, "labels": e.labels, "attention_mask": [1] * len(e.input_ids)}
        for e in encode_all(tok, [conversation(q, a) for q, a in train], 512)
    ]
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype).to(device)
    cfg = LoraConfig(
        r=REFERENCE["r"],
        lora_alpha=REFERENCE["alpha"],
        lora_dropout=REFERENCE["dropout"],
        target_modules=LINEAR,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, cfg)
    with tempfile.TemporaryDirectory() as d:
        args = TrainingArguments(
            output_dir=d,
            per_device_train_batch_size=REFERENCE["batch"],
            num_train_epochs=epochs,
            learning_rate=REFERENCE["lr"],
            lr_scheduler_type="cosine",
            warmup_steps=max(1, round(0.05 * epochs * -(-len(data) // REFERENCE["batch"]))),  # 5% of the steps
            logging_steps=10,
            save_strategy="no",
            report_to=[],
            seed=0,
            bf16=device == "cuda",
            use_cpu=device == "cpu",
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        collator = DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=-100)
        Trainer(model=model, args=args, train_dataset=data, data_collator=collator).train()
    train_s = time.perf_counter() - t0
    model.eval()
    tok.padding_side = "left"
    outputs: list[str] = []
    new = max_new_tokens(tok, intents)
    with torch.inference_mode():
        for s in range(0, len(test), 16):
            prompts = [
                tok.apply_chat_template(conversation(q), add_generation_prompt=True, tokenize=False)
                for q, _ in test[s : s + 16]
            ]
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            gen = model.generate(**enc, max_new_tokens=new, do_sample=False, pad_token_id=tok.pad_token_id)
            outputs += tok.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    got = score("classification", outputs, [a for _, a in test], intents)
    return {"accuracy": got.value, "format": got.format, "wall_s": time.perf_counter() - t0, "train_s": train_s}


def run_ladder(model: str, intents: list[str], train: list, test: list, max_epochs: int | None) -> dict:
    """The climb's fine-tune rung (tuning service + worker), then an eval of the pipeline it is served with."""
    from ladder.climb.tune import fine_tune
    from ladder.evals.runner import run_eval
    from ladder.evals.testset import TestItem
    from ladder.models.hf import load_tokenizer
    from ladder.pipelines.config import PipelineConfig
    from ladder.pipelines.parsers import ParserSpec
    from ladder.pipelines.pipeline import Pipeline

    t0 = time.perf_counter()
    parser = ParserSpec("label", intents)
    items = [TestItem([{"role": "user", "content": q}], a) for q, a in train]
    hp = {"n_epochs": max_epochs} if max_epochs else None
    with tempfile.TemporaryDirectory() as d:
        out = fine_tune(items, SYSTEM, model=model, workdir=Path(d), hyperparameters=hp, parser=parser, seed=0)
    if out.error:
        sys.exit(f"ladder's fine-tune failed: {out.error}")
    train_s = time.perf_counter() - t0
    cfg = PipelineConfig(
        model=out.model,
        system_prompt=SYSTEM,
        parser=parser,
        max_tokens=max_new_tokens(load_tokenizer(model), intents),
    )
    tests = [TestItem([{"role": "user", "content": q}], a) for q, a in test]
    run = run_eval(Pipeline(cfg), tests, metrics=["accuracy", "format"], latency_sample=0, store=False)
    return {
        "accuracy": run.metrics["accuracy"],
        "format": run.format_compliance,
        "wall_s": time.perf_counter() - t0,
        "train_s": train_s,
        "steps": out.loss[-1][0] if out.loss else 0,
        "best_step": out.best_step,
        "valid_metric": out.metric[-1][1] if out.metric else None,
        "curve": out.metric,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-train", type=int, default=None, help="Training rows (spread over the intents).")
    ap.add_argument("--limit-test", type=int, default=None, help="Test rows (spread over the intents).")
    ap.add_argument("--max-epochs", type=int, default=None, help="Cap both sides' epochs (for a quick check).")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    args = ap.parse_args()
    if args.threads:
        os.environ["LADDER_THREADS"] = str(args.threads)  # the tuning worker reads it too
        import torch

        torch.set_num_threads(args.threads)
    from ladder.models.hf import hf_dir
    from ladder.models.registry import get_model
    from ladder.settings import get_settings

    intents, train, test = load(args.limit_train, args.limit_test)
    model = get_settings().default_model
    base_dir = str(hf_dir(get_model(model)))
    epochs = min(REFERENCE["epochs"], args.max_epochs) if args.max_epochs else REFERENCE["epochs"]
    print(f"{len(intents)} intents, {len(train)} training rows, {len(test)} test rows; model {model}")
    ref = run_reference(base_dir, intents, train, test, epochs)
    print(f"reference done in {ref['wall_s']:.0f} s")
    lad = run_ladder(model, intents, train, test, args.max_epochs)
    print(f"ladder done in {lad['wall_s']:.0f} s (best checkpoint: step {lad['best_step']} of {lad['steps']})")
    print("ladder's validation accuracy by step: " + ", ".join(f"{s} {v:.3f}" for s, v in lad["curve"]))
    print()
    print(f"{'side':<28}{'accuracy':>10}{'format':>9}{'train s':>10}{'wall s':>9}")
    for name, r in ((f"transformers+peft, {epochs} ep", ref), ("ladder fine-tune rung", lad)):
        print(f"{name:<28}{r['accuracy']:>10.3f}{r['format']:>9.0%}{r['train_s']:>10.0f}{r['wall_s']:>9.0f}")
    print(
        f"ratio ladder/reference: accuracy {lad['accuracy'] - ref['accuracy']:+.3f} points, "
        f"wall time {lad['wall_s'] / ref['wall_s']:.2f}x"
    )


if __name__ == "__main__":
    main()
