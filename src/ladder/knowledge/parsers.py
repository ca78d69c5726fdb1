"""Document parsers: bytes of .txt .md .html .pdf .docx .csv .jsonl into sections with heading path / page."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import PurePath

from ladder.errors import InvalidInput

FORMATS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".csv": "csv",
    ".jsonl": "jsonl",
}
TEXT_COLUMN_DEFAULTS = ("text", "content", "body")
MAX_TEXT_CHARS = 20_000_000  # extracted text per upload; bounds zip bombs in .docx and huge tables
_HEADING_MARK = "\x00"


@dataclass
class Section:
    text: str
    heading: str | None = None  # heading path, "Chapter > Section"
    page: int | None = None  # 1-based, PDF only


@dataclass
class ParsedDoc:
    name: str
    sections: list[Section]
    metadata: dict = field(default_factory=dict)


def detect_format(filename: str) -> str:
    suffix = PurePath(filename.replace("\\", "/")).suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        kinds = ", ".join(sorted({s for s in FORMATS if s not in (".text", ".markdown", ".htm")}))
        raise InvalidInput(
            f"{filename}: unsupported file type {suffix or '(no extension)'!r}; supported: {kinds}",
            param="file",
        )
    return fmt


def parse(filename: str, data: bytes, fmt: str, text_column: str | None = None) -> list[ParsedDoc]:
    """The documents in one upload (one, or one per row for .csv/.jsonl); InvalidInput when unreadable."""
    if not data:
        raise InvalidInput(f"{filename}: the file is empty", param="file")
    parser = {"text": _text, "markdown": _markdown, "html": _html, "pdf": _pdf, "docx": _docx}.get(fmt)
    if parser is not None:
        sections = [s for s in parser(filename, data) if s.text.strip()]
        docs = [ParsedDoc(filename, sections)]
    else:
        docs = _rows(filename, data, fmt, text_column)
    total = sum(len(s.text) for d in docs for s in d.sections)
    if total > MAX_TEXT_CHARS:
        raise InvalidInput(
            f"{filename}: {total:,} characters of text is over the limit of {MAX_TEXT_CHARS:,}; split the file",
            param="file",
        )
    if not any(d.sections for d in docs):
        raise InvalidInput(f"{filename}: no text found in the file (a scanned PDF needs OCR first)", param="file")
    return docs


def decode(filename: str, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise InvalidInput(f"{filename}: looks like a binary file, not text", param="file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput(
            f"{filename}: not UTF-8 text (bad byte at offset {e.start}); save it as UTF-8", param="file"
        ) from None


def _text(filename: str, data: bytes) -> list[Section]:
    return [Section(decode(filename, data))]


def _marked_sections(text: str) -> list[Section]:
    """Split text whose heading lines look like NUL level NUL title into sections with heading paths."""
    sections, stack, lines = [], [], []

    def flush() -> None:
        if "".join(lines).strip():
            sections.append(Section("\n".join(lines).strip("\n"), " > ".join(t for _, t in stack) or None))
        lines.clear()

    for line in text.split("\n"):
        if line.startswith(_HEADING_MARK) and line.count(_HEADING_MARK) >= 2:
            flush()
            _, level, title = line.split(_HEADING_MARK, 2)
            level = int(level)
            while stack and stack[-1][0] >= level:
                stack.pop()
            title = " ".join(title.split())
            if title:
                stack.append((level, title))
        else:
            lines.append(line)
    flush()
    return sections


_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def _markdown(filename: str, data: bytes) -> list[Section]:
    out, fenced = [], False
    for line in decode(filename, data).replace("\r\n", "\n").split("\n"):
        if _MD_FENCE.match(line):
            fenced = not fenced
        m = None if fenced else _MD_HEADING.match(line)
        out.append(f"{_HEADING_MARK}{len(m.group(1))}{_HEADING_MARK}{m.group(2)}" if m else line.replace("\x00", ""))
    return _marked_sections("\n".join(out))


_BLOCKS = "p,div,li,tr,br,pre,blockquote,section,article,table,dd,dt,ul,ol,header,footer,main,aside,form"


def _html(filename: str, data: bytes) -> list[Section]:
    from selectolax.lexbor import LexborHTMLParser

    text = data.decode("utf-8-sig", errors="replace").replace("\x00", "")
    tree = LexborHTMLParser(text)
    for node in tree.css("script,style,noscript,template,svg,iframe,object"):
        node.decompose()
    for node in tree.css("h1,h2,h3,h4,h5,h6"):
        title = " ".join(node.text(separator=" ").split())
        node.replace_with(f"\n\n{_HEADING_MARK}{node.tag[1]}{_HEADING_MARK}{title}\n\n")
    for node in tree.css(_BLOCKS):
        node.insert_before("\n" if node.tag in ("li", "tr", "br") else "\n\n")
    for node in tree.css("td,th"):
        node.insert_before(" | ")
    root = tree.body or tree.root
    body = root.text(separator="") if root is not None else ""
    return _marked_sections(body)


def _pdf(filename: str, data: bytes) -> list[Section]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception:
                opened = 0
            if not opened:
                raise InvalidInput(
                    f"{filename}: the PDF is encrypted with a password; upload a decrypted copy", param="file"
                )
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            sections.append(Section(page.extract_text() or "", page=number))
        return sections
    except InvalidInput:
        raise
    except Exception as e:
        raise InvalidInput(f"{filename}: not a readable PDF ({type(e).__name__}: {e})", param="file") from None


def _docx(filename: str, data: bytes) -> list[Section]:
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        lines = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for row in block.rows:
                    lines.append(" | ".join(" ".join(c.text.split()) for c in row.cells))
                lines.append("")
                continue
            style = (block.style.name if block.style is not None else "") or ""
            level = 1 if style == "Title" else int(style[8:]) if re.fullmatch(r"Heading [1-9]", style) else 0
            text = block.text.replace("\x00", "")
            lines.append(f"{_HEADING_MARK}{level}{_HEADING_MARK}{text}" if level else text)
            lines.append("")
    except Exception as e:
        raise InvalidInput(f"{filename}: not a readable .docx file ({type(e).__name__}: {e})", param="file") from None
    return _marked_sections("\n".join(lines))


def _jsonl_rows(filename: str, data: bytes) -> tuple[list[str], list[tuple[int, dict]]]:
    """(columns in first-seen order, (line, object) rows), read under the bounds every JSONL read gets.

    Every bad line is reported at once, by number, the same way as for a training file.
    """
    from ladder.data.boundedjson import read_jsonl
    from ladder.data.formats import DatasetError, Problem

    columns: dict[str, None] = {}
    rows, problems = [], []
    for item in read_jsonl(data):
        if item.error is not None:
            problems.append(Problem(item.line, "", item.error, item.hint))
        elif not isinstance(item.value, dict):
            problems.append(
                Problem(
                    item.line,
                    "",
                    f"expected a JSON object, got {type(item.value).__name__}",
                    "write one JSON object per line",
                )
            )
        else:
            columns.update(dict.fromkeys(item.value))
            rows.append((item.line, item.value))
    if problems:
        raise DatasetError(filename, problems, param="file", see_all=False)
    return list(columns), rows


def _rows(filename: str, data: bytes, fmt: str, text_column: str | None) -> list[ParsedDoc]:
    """One document per row; the text column(s) are the text, the other columns the metadata."""
    rows: list[tuple[int, dict]] = []
    if fmt == "csv":
        text = decode(filename, data)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            for row in reader:
                rows.append((reader.line_num, {k: v for k, v in row.items() if k is not None}))
        except csv.Error as e:
            raise InvalidInput(f"{filename}: line {reader.line_num}: {e}", param="file") from None
        columns = list(reader.fieldnames or [])
    else:
        columns, rows = _jsonl_rows(filename, data)
    if not rows:
        raise InvalidInput(f"{filename}: no rows found", param="file")
    wanted = [c.strip() for c in text_column.split(",")] if text_column else None
    if wanted is None:
        wanted = [next((c for c in TEXT_COLUMN_DEFAULTS if c in columns), None)]
        if wanted[0] is None:
            raise InvalidInput(
                f"{filename}: which column holds the text? none of {', '.join(TEXT_COLUMN_DEFAULTS)}"
                f" is present; columns: {', '.join(columns)}; pass text_column "
                "(CLI: --text-column NAME, several as a,b)",
                param="text_column",
            )
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InvalidInput(f"{filename}: no column {missing[0]!r}; columns: {', '.join(columns)}", param="text_column")
    docs = []
    for number, row in rows:
        parts = [str(v).strip() if v is not None else "" for v in (row.get(c) for c in wanted)]
        # With several text columns the first is the row's title (a FAQ's question): it becomes the
        # heading of every chunk of the row, so a long answer's later chunks still carry it.
        title = " ".join(parts[0].split()) if len(parts) > 1 else None
        body = "\n\n".join(p for p in (parts[1:] if title else parts) if p)
        metadata = {k: v for k, v in row.items() if k not in wanted}
        metadata.setdefault("row", number)
        sections = [Section(body or title, title if body else None)] if (body or title) else []
        docs.append(ParsedDoc(f"{filename}#{number}", sections, metadata))
    return docs
