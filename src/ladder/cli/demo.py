"""`ladder demo`: the main job on the embedded defaults (for now: chat with the default model and time it)."""

from __future__ import annotations

import time

import typer

from ladder.cli.console import console


def demo() -> None:
    """Run the demo on the embedded defaults."""
    from ladder.models import service
    from ladder.models.types import ChatRequest
    from ladder.settings import get_settings

    name = get_settings().default_model
    console.rule(f"ladder demo: {name}")
    t0 = time.perf_counter()
    service.open_backend(name)
    console.print(f"loaded {name} in {time.perf_counter() - t0:.2f} s")
    prompt = "In two sentences, why should a team try prompting before fine-tuning a model?"
    console.print(f"[bold]user:[/] {prompt}")
    resp = service.chat(name, ChatRequest.of([{"role": "user", "content": prompt}], max_tokens=96))
    console.print(f"[bold]{name}:[/] {resp.text}", highlight=False)
    tps = resp.usage.completion_tokens / (resp.latency_ms / 1000) if resp.latency_ms else 0
    console.print(f"{resp.usage.completion_tokens} tokens in {resp.latency_ms / 1000:.2f} s ({tps:.1f} tokens/s)")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
