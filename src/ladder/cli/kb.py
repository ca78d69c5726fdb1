"""`ladder kb ...`: create knowledge bases, add and remove documents, search, evaluate, reindex."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ladder.cli.projects import ProjectOption, project_id
from ladder.errors import InvalidInput

app = typer.Typer(
    help="Knowledge bases: documents parsed, chunked, embedded and searchable at once.", no_args_is_help=True
)


def _service():
    from ladder.knowledge import service  # heavy imports only when a kb command runs

    return service


def _pairs(items: list[str] | None, what: str) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{what} {item!r} must look like key=value", param=what)
        out[key] = value
    return out


@app.command("create")
def create(
    name: str,
    chunk_size: int = typer.Option(None, help="tokens per chunk (default 200)"),
    chunk_overlap: int = typer.Option(None, help="tokens shared by neighbouring chunks (default 30)"),
    project: ProjectOption = None,
) -> None:
    """Create an empty knowledge base."""
    from ladder.cli.console import console

    kb = _service().create_kb(name, chunk_size=chunk_size, chunk_overlap=chunk_overlap, project_id=project_id(project))
    console.print(
        f"created {kb.name} ({kb.id}): chunks of {kb.chunk_size} tokens, overlap {kb.chunk_overlap}, "
        f"embedder {kb.embed_model}"
    )


@app.command("add")
def add(
    name: str,
    files: list[Path] = typer.Argument(..., help="files: .txt .md .html .pdf .docx .csv .jsonl"),
    policy: str = typer.Option("replace", help="same name, new content: skip | replace | keep"),
    text_column: str = typer.Option(None, help=".csv/.jsonl column(s) holding the text, e.g. question,answer"),
    meta: list[str] = typer.Option(None, help="metadata key=value for every document (repeatable)"),
    queue: bool = typer.Option(
        False,
        "--queue",
        help="queue each file as an `ingest` task for `ladder worker` or a server's worker instead of ingesting"
        " it here; `ladder kb ingests NAME` shows them",
    ),
    project: ProjectOption = None,
) -> None:
    """Add documents (one transaction each): searchable as soon as each one is done."""
    from ladder.cli.console import console, progress_bar
    from ladder.knowledge.ingest import read_bounded

    pid = project_id(project)
    svc = _service()
    metadata = _pairs(meta, "meta") or None
    for path in files:
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file", param="files")
    if queue:
        _queue_files(name, files, policy=policy, metadata=metadata, text_column=text_column, project_id=pid)
        return
    base = 0
    with progress_bar("embedding", None, unit="chunks") as advance:
        for path in files:
            seen = [0]

            def step(done: int, total: int, seen=seen, path=path, base=base) -> None:
                advance(done - seen[0], total=base + total, file=path.name)
                seen[0] = done

            result = svc.add_document(
                name,
                path.name,
                read_bounded(path),  # its size checked before a byte is read
                policy=policy,
                metadata=metadata,
                text_column=text_column,
                project_id=pid,
                on_progress=step,
            )
            note = f", {result.skipped_rows} empty rows skipped" if result.skipped_rows else ""
            replaced = f", replaced {result.removed_docs} old" if result.removed_docs else ""
            console.print(
                f"{result.status}: {result.filename} ({len(result.docs)} documents, "
                f"{result.chunks} chunks{replaced}{note})",
                highlight=False,
            )
            base += seen[0]


def _queue_files(name: str, files: list[Path], **options) -> None:
    from ladder.cli.console import console
    from ladder.knowledge.ingest import read_bounded
    from ladder.knowledge.records import AddResult
    from ladder.queue.ingests import queue_upload

    for path in files:
        out = queue_upload(name, path.name, read_bounded(path), **options)
        if isinstance(out, AddResult):  # the same content is there already (or skip): nothing to queue
            console.print(f"{out.status}: {out.filename} ({len(out.docs)} documents)", highlight=False)
        else:
            console.print(f"queued: {out.params['filename']} as {out.id}", highlight=False)


@app.command("ingests")
def ingests(
    name: str, json_out: bool = typer.Option(False, "--json", help="print JSON"), project: ProjectOption = None
) -> None:
    """Queued, running and finished ingests of a knowledge base (large uploads run as tasks), newest first."""
    from ladder.cli.console import console
    from ladder.queue import ingests as queued

    tasks = queued.list_ingests(name, project_id(project))
    if json_out:
        typer.echo(json.dumps([queued.as_dict(t) for t in tasks], ensure_ascii=False, indent=1))
        return
    table = Table("id", "file", "status", "progress", "error")
    for t in tasks:
        prog = t.progress or {}
        shown = f"{prog.get('stage', '')} {prog.get('done', 0)}/{prog.get('total') or '?'}" if prog else ""
        table.add_row(t.id, t.params.get("filename", ""), t.status, shown, (t.error or {}).get("message", ""))
    console.print(table)


@app.command("cancel-ingest")
def cancel_ingest(name: str, ingest_id: str, project: ProjectOption = None) -> None:
    """Cancel a queued ingest (at once) or a running one (at its next batch); nothing of it is kept."""
    from ladder.cli.console import console
    from ladder.queue.ingests import cancel_ingest as cancel

    task = cancel(name, ingest_id, project_id(project))
    note = "" if task.done else " (it stops at its next batch)"
    console.print(f"{task.id}: {task.status}{note}", highlight=False)


@app.command("docs")
def docs(
    name: str, json_out: bool = typer.Option(False, "--json", help="print JSON"), project: ProjectOption = None
) -> None:
    """List the documents of a knowledge base."""
    from ladder.cli.console import console

    rows = _service().list_docs(name, project_id=project_id(project))
    if json_out:
        typer.echo(json.dumps([d.as_dict() for d in rows], ensure_ascii=False, indent=1))
        return
    table = Table("id", "name", "format", "chunks", "bytes")
    for d in rows:
        table.add_row(d.id, d.name, d.format, str(d.n_chunks), str(d.bytes))
    console.print(table)
    from ladder.queue.ingests import list_ingests

    pending = list_ingests(name, project_id(project), pending=True)
    if pending:  # not searchable yet: they appear above once their task has succeeded
        console.print(f"{len(pending)} more queued or running: `ladder kb ingests {name}`", highlight=False)


@app.command("rm")
def rm(
    name: str,
    doc: str = typer.Argument(..., help="document id, name, or upload name (all its rows)"),
    project: ProjectOption = None,
) -> None:
    """Remove a document; it is gone from the very next search."""
    from ladder.cli.console import console

    n = _service().remove_doc(name, doc, project_id=project_id(project))
    console.print(f"removed {n} document{'s' if n != 1 else ''}", highlight=False)


@app.command("delete")
def delete(
    name: str, yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"), project: ProjectOption = None
) -> None:
    """Delete a knowledge base with all its documents."""
    from ladder.cli.console import console

    pid = project_id(project)
    svc = _service()
    kb = svc.get_kb(name, project_id=pid)
    if not yes and not typer.confirm(f"delete {kb.name} with {kb.docs} documents?"):
        raise typer.Exit(1)
    svc.delete_kb(kb.id, project_id=pid)
    console.print(f"deleted {kb.name}", highlight=False)


@app.command("list")
def list_(project: ProjectOption = None) -> None:
    """List knowledge bases."""
    from ladder.cli.console import console

    table = Table("name", "id", "docs", "chunks", "chunk size", "overlap", "embedder")
    for kb in _service().list_kbs(project_id=project_id(project)):
        table.add_row(
            kb.name,
            kb.id,
            str(kb.docs),
            str(kb.chunks),
            str(kb.chunk_size),
            str(kb.chunk_overlap),
            f"{kb.embed_model} ({kb.embed_dim})",
        )
    console.print(table)


@app.command("search")
def search(
    name: str,
    query: str,
    k: int = typer.Option(5, "-k", help="how many chunks"),
    threshold: float = typer.Option(None, help="minimum cosine similarity"),
    filter_: list[str] = typer.Option(None, "--filter", help="metadata key=value (repeatable)"),
    bm25_weight: float = typer.Option(None, help="weight of keyword search (default 0.5)"),
    dense_weight: float = typer.Option(None, help="weight of vector search (default 1.0)"),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
    project: ProjectOption = None,
) -> None:
    """Search one or more knowledge bases (NAME may be a,b)."""
    from ladder.cli.console import console

    weights = {k_: v for k_, v in (("bm25", bm25_weight), ("dense", dense_weight)) if v is not None} or None
    hits = _service().search(
        name.split(","),
        query,
        k=k,
        threshold=threshold,
        filters=_pairs(filter_, "filter") or None,
        weights=weights,
        project_id=project_id(project),
    )
    if json_out:
        typer.echo(json.dumps([h.as_dict() for h in hits], ensure_ascii=False, indent=1))
        return
    if not hits:
        console.print("no results")
    for n, h in enumerate(hits, start=1):
        where = "".join([f", page {h.page}" if h.page is not None else "", f", {h.heading}" if h.heading else ""])
        ranks = f"bm25 #{h.bm25_rank or '-'}  dense #{h.dense_rank or '-'}  cos {h.similarity:.3f}"
        console.print(f"[bold][{n}] {h.doc_name}{where}[/]  score {h.score:.4f}  ({ranks})", highlight=False)
        text = h.text if len(h.text) <= 500 else h.text[:500] + "…"
        console.print(text, markup=False, highlight=False)
        console.print()


@app.command("eval")
def eval_(name: str, questions: Path, k: int = typer.Option(5, "-k"), project: ProjectOption = None) -> None:
    """Retrieval quality: recall@k, MRR, nDCG@10 over JSONL lines {"question": ..., "doc": name}."""
    from ladder.cli.console import console

    r = _service().evaluate(name, questions, k=k, project_id=project_id(project))
    console.print(
        f"{r['questions']} questions: recall@{k} {r[f'recall@{k}']:.3f}  MRR {r['mrr']:.3f}  "
        f"nDCG@10 {r['ndcg@10']:.3f}",
        highlight=False,
    )
    for q in r["misses"][:10]:
        console.print(f"  missed: {q}", markup=False, highlight=False)


@app.command("reindex")
def reindex(name: str, project: ProjectOption = None) -> None:
    """Re-embed every chunk with the current embedding model."""
    from ladder.cli.console import console, progress_bar

    pid = project_id(project)
    svc = _service()
    kb = svc.get_kb(name, project_id=pid)
    with progress_bar("re-embedding", kb.chunks, unit="chunks") as advance:
        seen = [0]

        def step(done: int, total: int) -> None:
            advance(done - seen[0])
            seen[0] = done

        n = svc.reindex(kb.id, project_id=pid, on_progress=step)
    console.print(f"re-embedded {n} chunks of {kb.name}", highlight=False)


def register(root: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    root.add_typer(app, name="kb")
