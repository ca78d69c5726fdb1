"""Training throughput: ladder's LoRA trainer vs a plain transformers Trainer + peft baseline, same data.

    python bench/training.py [--model NAME] [--steps 16] [--batch-size 8] [--full-run] [--threads N]

Part 1 trains the same LoRA configuration on the same examples for the same number of optimizer
steps twice, each in its own process (so peak memory is per side): ladder's trainer (length-grouped
batches, a shared prompt start run once, logits only on trained tokens) and a transformers
`Trainer` that pads every random batch to its longest example. It prints real-token throughput
(padding not counted), peak memory, wall time and the ratio. Part 2 (--full-run) times a 2-epoch
LoRA job on 500 short classification examples (banking77 when ../shared/datasets has it). Runs on CUDA when present.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
BANKING = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "banking77" / "train.csv"
SYSTEM = "Classify the customer's banking question. Answer with the category name only."


def examples(n: int, seed: int = 0) -> list[list[dict]]:
    """n short classification conversations (banking77 if present, else synthetic)."""
    rng = random.Random(seed)
    if BANKING.exists():
        with open(BANKING, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        rng.shuffle(rows)
        pairs = [(r["text"], r["category"]) for r in rows[:n]]
    else:
        labels = ["card_arrival", "refund_not_showing_up", "exchange_rate", "lost_or_stolen_card"]
        pairs = [
            (
                " ".join(
                    rng.choice(["my", "card", "please", "help", "why", "is", "the", "refund", "rate"])
                    for _ in range(rng.randint(4, 40))
                ),
                rng.choice(labels),
            )
            for _ in range(n)
        ]
    return [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}, {"role": "assistant", "content": a}]
        for q, a in pairs
    ]


def cpu_seconds() -> float:
    """CPU time of this process (all threads): unlike wall time, not inflated by other jobs on the host."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_mem_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hp_for(n: int, batch: int, epochs: int) -> dict:
    from ladder.tuning.hparams import resolve

    return resolve(
        {
            "n_epochs": epochs,
            "batch_size": batch,
            "micro_batch_size": batch,
            "lora_r": 16,
            "lora_dropout": 0.0,
            "max_seq_length": 512,
            "checkpoint_every": 10**9,
            "warmup_ratio": 0.1,
        },
        n,
    )


def run_ladder(base_dir: str, convs: list, batch: int, epochs: int, threads: int, q) -> None:
    import torch
    from transformers import AutoTokenizer

    from ladder.tuning import trainer
    from ladder.tuning.encode import encode_all

    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(base_dir)
    data = encode_all(tok, convs, 512)
    hp = hp_for(len(data), batch, epochs)
    seen = {"real": 0, "losses": []}
    cb = trainer.Callbacks(metrics=lambda m: seen["losses"].append(m["train_loss"]))
    with tempfile.TemporaryDirectory() as d:
        t0, c0 = time.perf_counter(), cpu_seconds()
        res = trainer.train(Path(d), Path(base_dir), data, [], hp, 0, tok.pad_token_id, cb)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    real = sum(len(e.input_ids) for e in data) * epochs
    q.put(
        {
            "side": "ladder",
            "wall_s": wall,
            "cpu_s": cpu,
            "load": os.getloadavg()[0],
            "real_tokens": real,
            "steps": res.steps,
            "final_loss": seen["losses"][-1],
            "peak_mb": peak_mem_mb(trainer.pick_device()),
        }
    )


def run_baseline(base_dir: str, convs: list, batch: int, epochs: int, threads: int, q) -> None:
    """The usual recipe: Trainer + peft, random batches padded to their longest example, full logits."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from ladder.tuning.encode import encode_all
    from ladder.tuning.trainer import pick_device

    torch.set_num_threads(threads)
    device = pick_device()
    tok = AutoTokenizer.from_pretrained(base_dir)
    data = [
        {"input_ids": e.input_ids, "labels": e.labels, "attention_mask": [1] * len(e.input_ids)}
        for e in encode_all(tok, convs, 512)
    ]
    hp = hp_for(len(data), batch, epochs)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=hp["lora_r"],
            lora_alpha=hp["lora_alpha"],
            lora_dropout=0.0,
            target_modules=hp["lora_target_modules"],
            task_type="CAUSAL_LM",
        ),
    )
    with tempfile.TemporaryDirectory() as d:
        args = TrainingArguments(
            output_dir=d,
            per_device_train_batch_size=batch,
            num_train_epochs=epochs,
            learning_rate=hp["learning_rate"],
            lr_scheduler_type="cosine",
            warmup_steps=1 + hp["total_steps"] // 10,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            seed=0,
            bf16=device == "cuda",
            use_cpu=device == "cpu",
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        tr = Trainer(
            model=model,
            args=args,
            train_dataset=data,
            data_collator=DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=-100),
        )
        t0, c0 = time.perf_counter(), cpu_seconds()
        out = tr.train()
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    real = sum(len(e["input_ids"]) for e in data) * epochs
    losses = [h["loss"] for h in tr.state.log_history if "loss" in h]
    q.put(
        {
            "side": "baseline",
            "wall_s": wall,
            "cpu_s": cpu,
            "load": os.getloadavg()[0],
            "real_tokens": real,
            "steps": out.global_step,
            "final_loss": losses[-1] if losses else None,
            "peak_mb": peak_mem_mb(device),
        }
    )


def in_process(fn, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(*args, q))
    p.start()
    result = q.get()
    p.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="registered local model (default: the default model)")
    ap.add_argument("--steps", type=int, default=16, help="optimizer steps per side in part 1")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--full-run", action="store_true", help="also time 2 epochs on 500 examples")
    ap.add_argument("--skip-compare", action="store_true", help="only the full run")
    args = ap.parse_args()

    import torch

    from ladder.models.hf import hf_dir
    from ladder.models.registry import get_model
    from ladder.settings import get_settings

    name = args.model or get_settings().default_model
    base_dir = str(hf_dir(get_model(name)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"model {name}, device {device}, threads {args.threads}, data "
        f"{'banking77' if BANKING.exists() else 'synthetic'}",
        flush=True,
    )
    results = {}
    if not args.skip_compare:
        convs = examples(args.steps * args.batch_size)
        rows = [
            in_process(run_baseline, base_dir, convs, args.batch_size, 1, args.threads),
            in_process(run_ladder, base_dir, convs, args.batch_size, 1, args.threads),
        ]
        print(
            f"\n{'trainer':10} {'steps':>5} {'wall s':>8} {'real tok/s':>11} {'CPU s':>8} {'tok/CPU s':>10}"
            f" {'peak MB':>9} {'final loss':>10} {'load':>5}"
        )
        for r in rows:
            r["tok_s"] = r["real_tokens"] / r["wall_s"]
            r["tok_cpu_s"] = r["real_tokens"] / r["cpu_s"]
            print(
                f"{r['side']:10} {r['steps']:5d} {r['wall_s']:8.1f} {r['tok_s']:11.1f} {r['cpu_s']:8.1f}"
                f" {r['tok_cpu_s']:10.2f} {r['peak_mb']:9.0f} {r['final_loss'] or float('nan'):10.4f}"
                f" {r['load']:5.1f}"
            )
        ratio = rows[1]["tok_s"] / rows[0]["tok_s"]
        cpu_ratio = rows[1]["tok_cpu_s"] / rows[0]["tok_cpu_s"]
        print(
            f"ratio (ladder / baseline real-token throughput): {ratio:.2f}x by wall time, {cpu_ratio:.2f}x by"
            " CPU time  (target >= 1.5x)"
        )
        results["compare"] = {"rows": rows, "ratio": ratio, "cpu_ratio": cpu_ratio}
    if args.full_run:
        r = in_process(run_ladder, base_dir, examples(500, seed=1), 8, 2, args.threads)
        print(
            f"\n2 epochs x 500 classification examples: {r['steps']} steps, {r['wall_s']:.0f} s "
            f"({r['wall_s'] / 60:.1f} min, target < 10 min), {r['cpu_s']:.0f} CPU s,"
            f" final loss {r['final_loss']:.4f}"
        )
        results["full_run"] = r
    print(json.dumps(results), file=sys.stderr)


if __name__ == "__main__":
    main()
