"""`ladder bots create|show|edit|list|chat`: named, versioned pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ladder.cli.console import console
from ladder.errors import InvalidInput

bots_app = typer.Typer(
    help="Chatbots: named pipelines (model + prompt + shots + knowledge bases), versioned.", no_args_is_help=True
)

_SHOTS = typer.Option(None, "--shots", help="JSONL of few-shot examples ({input, output} or chat form).")


_CONSTRAINED = typer.Option(
    None, "--constrained/--free", help="Decode under the parser's format (default: yes for label, json, regex)."
)
_ABSTAIN_BELOW = typer.Option(None, help="Answer the abstain label when the top label probability is below this.")
_ABSTAIN_LABEL = typer.Option(None, help="The label for a person to review (default: needs_review).")


def _read_shots(path: Path) -> list[dict]:
    from ladder.evals.testset import read_test_set

    return [{"input": t.input, "output": t.reference} for t in read_test_set(path)]


def _changes(
    model,
    system,
    instruction,
    shots,
    shots_mode,
    shots_k,
    kb,
    retrieval_k,
    threshold,
    max_tokens,
    temperature,
    parser,
    labels,
    schema,
    pattern,
    backend,
    constrained=None,
    abstain_below=None,
    abstain_label=None,
) -> dict:
    ch: dict = {}
    for key, value in (
        ("model", model),
        ("system_prompt", system),
        ("output_instruction", instruction),
        ("few_shot_mode", shots_mode),
        ("few_shot_k", shots_k),
        ("retrieval_k", retrieval_k),
        ("retrieval_threshold", threshold),
        ("max_tokens", max_tokens),
        ("temperature", temperature),
        ("backend", backend),
        ("constrained", constrained),
        ("abstain_below", abstain_below),
        ("abstain_label", abstain_label),
    ):
        if value is not None:
            ch[key] = value
    if shots is not None:
        ch["few_shot"] = _read_shots(shots)
    if kb:
        ch["kbs"] = [k for k in kb if k != "-"]
    if parser is not None or labels or schema or pattern:
        spec = {"kind": parser or ("label" if labels else "json" if schema else "regex" if pattern else "text")}
        if labels:
            spec["labels"] = [x.strip() for x in labels.split(",") if x.strip()]
        if schema:
            try:
                spec["schema"] = json.loads(Path(schema).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise InvalidInput(f"--schema {schema}: cannot read a JSON Schema ({e})", param="schema") from e
        if pattern:
            spec["pattern"] = pattern
        ch["parser"] = spec
    return ch


def _show(p) -> None:
    d = p.config.as_dict()
    if len(d["few_shot"]) > 5:
        d["few_shot"] = d["few_shot"][:5] + [f"... {len(p.config.few_shot) - 5} more"]
    console.print_json(json.dumps({"id": p.id, "name": p.name, "version": p.version, "config": d}))


@bots_app.command("create")
def create(
    name: str,
    model: str = typer.Option(None, help="Model name (default: the default model)."),
    system: str = typer.Option(None, help="System prompt."),
    instruction: str = typer.Option(None, help="Output instruction appended to the system prompt."),
    shots: Path = _SHOTS,
    shots_mode: str = typer.Option(None, help="fixed | retrieved (k most similar per request)."),
    shots_k: int = typer.Option(None, help="How many shots (fixed: first k, 0 = all)."),
    kb: list[str] = typer.Option(None, "--kb", help="Knowledge base name (repeat for several)."),
    retrieval_k: int = typer.Option(None, help="Passages retrieved per request."),
    threshold: float = typer.Option(None, help="Minimum retrieval score."),
    max_tokens: int = typer.Option(None),
    temperature: float = typer.Option(None),
    parser: str = typer.Option(None, help="text | label | json | regex"),
    labels: str = typer.Option(None, help="Comma-separated label set (label parser)."),
    schema: str = typer.Option(None, help="JSON Schema file (json parser)."),
    pattern: str = typer.Option(None, help="Regex (regex parser)."),
    backend: str = typer.Option(None, help="torch | llamacpp | remote (default: the model's own)."),
    constrained: bool = _CONSTRAINED,
    abstain_below: float = _ABSTAIN_BELOW,
    abstain_label: str = _ABSTAIN_LABEL,
) -> None:
    """Create a bot (version 1)."""
    from ladder.pipelines import service
    from ladder.settings import get_settings

    ch = _changes(
        model,
        system,
        instruction,
        shots,
        shots_mode,
        shots_k,
        kb,
        retrieval_k,
        threshold,
        max_tokens,
        temperature,
        parser,
        labels,
        schema,
        pattern,
        backend,
        constrained,
        abstain_below,
        abstain_label,
    )
    ch.setdefault("model", get_settings().default_model)
    _show(service.create_bot(name, ch))


@bots_app.command("edit")
def edit(
    name: str,
    model: str = typer.Option(None),
    system: str = typer.Option(None),
    instruction: str = typer.Option(None),
    shots: Path = _SHOTS,
    shots_mode: str = typer.Option(None),
    shots_k: int = typer.Option(None),
    kb: list[str] = typer.Option(None, "--kb", help="Replaces the list; --kb - clears it."),
    retrieval_k: int = typer.Option(None),
    threshold: float = typer.Option(None),
    max_tokens: int = typer.Option(None),
    temperature: float = typer.Option(None),
    parser: str = typer.Option(None),
    labels: str = typer.Option(None),
    schema: str = typer.Option(None),
    pattern: str = typer.Option(None),
    backend: str = typer.Option(None),
    constrained: bool = _CONSTRAINED,
    abstain_below: float = _ABSTAIN_BELOW,
    abstain_label: str = _ABSTAIN_LABEL,
) -> None:
    """Change a bot; the result is stored as a new version (old versions stay)."""
    from ladder.pipelines import service

    ch = _changes(
        model,
        system,
        instruction,
        shots,
        shots_mode,
        shots_k,
        kb,
        retrieval_k,
        threshold,
        max_tokens,
        temperature,
        parser,
        labels,
        schema,
        pattern,
        backend,
        constrained,
        abstain_below,
        abstain_label,
    )
    if not ch:
        raise InvalidInput("nothing to change: pass at least one option (see `ladder bots edit --help`)")
    _show(service.edit_bot(name, ch))


@bots_app.command("show")
def show(name: str, version: int = typer.Option(None, help="A past version (default: latest).")) -> None:
    """Show a bot's configuration."""
    from ladder.pipelines import service

    _show(service.get_bot(name, version))


@bots_app.command("list")
def list_() -> None:
    """List bots (latest versions)."""
    from rich.table import Table

    from ladder.pipelines import service

    t = Table("name", "version", "model", "parser", "shots", "knowledge bases", "id")
    for p in service.list_bots():
        c = p.config
        shots = f"{len(c.few_shot)} {c.few_shot_mode}" + (f" k={c.few_shot_k}" if c.few_shot_k else "")
        t.add_row(
            p.name, str(p.version), c.model, c.parser.kind, shots if c.few_shot else "-", ", ".join(c.kbs) or "-", p.id
        )
    console.print(t)


@bots_app.command("chat")
def chat(
    name: str,
    message: str = typer.Argument(None, help="One message; omit for an interactive chat."),
    version: int = typer.Option(None),
) -> None:
    """Chat with a bot (streamed, with cited sources)."""
    from ladder.pipelines import service
    from ladder.pipelines.pipeline import PipelineResult

    bot = service.get_bot(name, version)
    history: list[dict] = []
    while True:
        text = message if message is not None else typer.prompt("you", default="", show_default=False)
        if not text.strip():
            return
        history.append({"role": "user", "content": text})
        console.print(f"[bold]{bot.name}:[/] ", end="")
        final = None
        for part in bot.stream(history):
            if isinstance(part, PipelineResult):
                final = part
            else:
                console.print(part.text, end="", highlight=False, markup=False)
        console.print()
        if final is not None:
            for c in final.citations:
                console.print(f"  [dim]source: {_cite(c)}[/]", highlight=False)
            history.append({"role": "assistant", "content": final.text})
        if message is not None:
            return


def _cite(c) -> str:
    from ladder.pipelines.pipeline import as_plain

    d = as_plain(c)
    if isinstance(d, dict):
        keys = [k for k in ("index", "filename", "source", "title", "doc_id", "chunk_id") if d.get(k) is not None]
        return ", ".join(f"{k}={d[k]}" for k in keys) or str(d)
    return str(d)


def register(app: typer.Typer) -> None:
    """Add `ladder bots ...`."""
    app.add_typer(bots_app, name="bots")
