"""`ladder demo`: the whole ladder on the shipped help-desk sample, on the embedded defaults, on CPU."""

from __future__ import annotations

import time

import typer

from ladder.cli.console import console

KB_NAME = "brightwave-help"
DEMO_CHUNK_TOKENS = 128
# Steps of 8 examples at twice the base learning rate: on the 344 examples the job trains on, the
# validation accuracy after 2 epochs was 0.684, against 0.658 with the automatic 4 per step, and
# a longer step runs more tokens per second (bigger matrices, half the optimizer steps).
DEMO_BATCH = {"batch_size": 8, "learning_rate_multiplier": 2}


def _pick_threads() -> None:
    """One torch thread when the cores are busy now: oversubscribed OpenMP threads spin and stall.

    Measured over half a second rather than read from the load average, which still counts a job
    that ended a minute ago (right after `make install`, it halved the demo's speed on an idle machine).
    """
    import os

    import psutil

    if os.environ.get("LADDER_THREADS"):
        return
    cores = os.cpu_count() or 1
    if psutil.cpu_percent(interval=0.5) / 100 * cores >= cores - 0.5:
        os.environ["LADDER_THREADS"] = "1"
        from ladder.settings import reset_settings

        reset_settings()


def _epochs(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"--epochs must be 'auto' or a whole number, got {value!r}") from None


def demo(
    test_size: int = typer.Option(121, help="Test messages used, spread over the categories (121: all of them)."),
    # Two passes: the LoRA job is the demo's longest step (about 3 minutes on 2 CPU cores); it keeps its
    # best checkpoint by validation accuracy and stops early, so more (or "auto") costs time first.
    epochs: str = typer.Option("2", help="LoRA epochs for the fine-tune rung: N, or auto (with early stopping)."),
    shots: int = typer.Option(4, help="k for the few-shot rungs."),
    target: str = typer.Option("accuracy=0.7", help="The target the recommendation aims at."),
    no_tune: bool = typer.Option(False, "--no-tune", help="Skip the fine-tune rungs."),
) -> None:
    """Run the whole ladder on the shipped help-desk sample and recommend a rung."""
    from ladder import samples
    from ladder.cli.climb import ConsoleUI, print_advice, print_result
    from ladder.climb.advisor import Answers, advise
    from ladder.climb.runner import ClimbOptions, climb, parse_target
    from ladder.evals.testset import read_test_set, spread
    from ladder.knowledge import service as kb
    from ladder.settings import get_settings

    t0 = time.perf_counter()
    _pick_threads()
    console.rule("ladder demo: Brightwave help desk")
    train = read_test_set(samples.helpdesk_train())
    test = spread(read_test_set(samples.helpdesk_test()), test_size)
    labels = samples.helpdesk_labels()
    console.print(
        f"{len(train)} labelled training messages, {len(test)} test messages, {len(labels)} categories; "
        f"model {get_settings().default_model}; knowledge base: {len(samples.helpdesk_docs())} "
        "help-centre pages"
    )
    if KB_NAME not in {k.name for k in kb.list_kbs()}:
        console.print(f"indexing the help centre into knowledge base {KB_NAME!r} ...")
        # The help-centre pages are sections of about 100 tokens: a chunk is one section. Measured on
        # the RAG rung (4 examples, 2 passages): 614 prompt tokens on average, 664 with 200-token chunks.
        kb.create_kb(KB_NAME, chunk_size=DEMO_CHUNK_TOKENS)
        kb.add_files(KB_NAME, samples.helpdesk_docs())
    # Labelling support messages needs the taxonomy, not the help-centre facts: the RAG rung is there to
    # show what retrieval does (and does not) buy on such a task.
    print_advice(advise(Answers(task="classification", examples=len(train), narrow=True, low_cost=True)))
    opts = ClimbOptions(
        task="classification",
        kbs=[KB_NAME],
        target=parse_target(target),
        all=True,
        shots=shots,
        hyperparameters={"n_epochs": epochs if epochs == "auto" else _epochs(epochs), **DEMO_BATCH},
        tune=not no_tune,
        retrieval_k=2,
        latency_sample=4,
        regression_items=20,
    )
    console.rule("climb")
    result = climb(train, test, opts, ui=ConsoleUI())
    print_result(result)
    console.print(f"demo finished in {(time.perf_counter() - t0) / 60:.1f} min")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
