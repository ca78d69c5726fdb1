"""`ladder chat MODEL`: interactive streaming chat, or one answer with -m."""

from __future__ import annotations

import time

import typer

from ladder.cli.console import console, err_console
from ladder.models import service
from ladder.models.types import ChatRequest, GenerationParams, Message


def _answer(model: str, messages: list[Message], params: GenerationParams, backend: str | None) -> str:
    t0 = time.perf_counter()
    parts, n = [], 0
    for d in service.stream(model, ChatRequest(list(messages), params), backend=backend):
        if d.text:
            console.print(d.text, end="", highlight=False, markup=False, soft_wrap=True)
            parts.append(d.text)
        if d.usage is not None:
            n = d.usage.completion_tokens
    dt = time.perf_counter() - t0
    console.print()
    err_console.print(f"[dim]{n} tokens in {dt:.2f} s ({n / dt if dt else 0:.1f} tokens/s)[/]")
    return "".join(parts)


def chat_cmd(
    model: str = typer.Argument(None, help="model name (default: the settings' default model)"),
    message: str = typer.Option(None, "-m", "--message", help="answer this one message and exit"),
    system: str = typer.Option(None, "--system", help="system prompt"),
    max_tokens: int = typer.Option(256, help="most tokens to generate per answer"),
    temperature: float = typer.Option(0.0, help="0 is greedy"),
    top_p: float = typer.Option(1.0),
    seed: int = typer.Option(0),
    stop: list[str] = typer.Option(None, "--stop", help="stop sequence (repeatable)"),
    backend: str = typer.Option(None, help="torch | llamacpp | remote (default: the model's own)"),
) -> None:
    """Chat with a model, streaming the answer."""
    from ladder.settings import get_settings

    model = model or get_settings().default_model
    params = GenerationParams(
        max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed, stop=list(stop or [])
    )
    history = [Message("system", system)] if system else []
    if message is not None:
        _answer(model, history + [Message("user", message)], params, backend)
        return
    err_console.print(f"[dim]chatting with {model}; empty line or Ctrl-D to quit[/]")
    while True:
        try:
            text = console.input("[bold green]you>[/] ")
        except EOFError:
            break
        if not text.strip():
            break
        history.append(Message("user", text))
        console.print("[bold blue]model>[/] ", end="")
        history.append(Message("assistant", _answer(model, history, params, backend)))


def register(app: typer.Typer) -> None:
    app.command("chat")(chat_cmd)
