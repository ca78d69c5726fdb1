"""Parsing: structure kept (heading paths, pages, rows), bad input refused with the file and the reason."""

from __future__ import annotations

import io

import pytest

from ladder.errors import InvalidInput
from ladder.knowledge import bounded
from ladder.knowledge.parsers import parse
from tests.knowledge.conftest import make_pdf


def test_markdown_heading_paths_ignore_code_fences():
    md = b"# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n```\n# not a heading\n```\n\n# Other\n\nEnd."
    [doc] = parse("g.md", md, "markdown")
    got = [(s.heading, s.text.strip()) for s in doc.sections]
    assert got[0] == ("Guide", "Intro.")
    assert got[1][0] == "Guide > Install" and "# not a heading" in got[1][1]
    assert got[2] == ("Other", "End.")


def test_html_drops_scripts_and_keeps_headings():
    html = (
        b"<html><head><style>p{}</style></head><body><h1>Help</h1><p>Open the <b>app</b>.</p>"
        b"<script>alert('x')</script><h2>Billing</h2><ul><li>Pay monthly</li><li>Pay yearly</li></ul></body>"
    )
    [doc] = parse("h.html", html, "html")
    assert [s.heading for s in doc.sections] == ["Help", "Help > Billing"]
    assert "Open the app." in doc.sections[0].text
    assert "alert" not in " ".join(s.text for s in doc.sections)
    assert "Pay monthly\nPay yearly" in doc.sections[1].text


def test_pdf_pages_are_kept():
    [doc] = parse("p.pdf", make_pdf(["Refunds take five days", "Shipping is free"]), "pdf")
    assert [(s.page, s.text) for s in doc.sections] == [
        (1, "Refunds take five days"),
        (2, "Shipping is free"),
    ]


def test_docx_heading_paths_and_tables():
    import docx

    d = docx.Document()
    d.add_heading("Policies", level=1)
    d.add_paragraph("General rules.")
    d.add_heading("Refunds", level=2)
    d.add_paragraph("Refunds take five days.")
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "plan", "price"
    buf = io.BytesIO()
    d.save(buf)
    [doc] = parse("p.docx", buf.getvalue(), "docx")
    assert [s.heading for s in doc.sections] == ["Policies", "Policies > Refunds"]
    assert "Refunds take five days." in doc.sections[1].text and "plan | price" in doc.sections[1].text


def test_csv_one_document_per_row_with_title_and_metadata():
    data = b'question,answer,team\nHow to pay?,By card.,billing\n,,\nWhere?,"In Paris,\nFrance",hr\n'
    docs = parse("faq.csv", data, "csv", text_column="question,answer")
    named = {d.name: d for d in docs}
    assert set(named) == {"faq.csv#2", "faq.csv#3", "faq.csv#5"}
    assert named["faq.csv#2"].sections[0].heading == "How to pay?"
    assert named["faq.csv#2"].sections[0].text == "By card."
    assert named["faq.csv#2"].metadata == {"team": "billing", "row": 2}
    assert named["faq.csv#3"].sections == []  # empty row: no text, skipped by the service
    assert named["faq.csv#5"].sections[0].text == "In Paris,\nFrance"


def test_jsonl_errors_name_the_line():
    with pytest.raises(InvalidInput, match=r"f.jsonl: 1 problem:\n  line 2: invalid JSON"):
        parse("f.jsonl", b'{"text": "a"}\n{oops\n', "jsonl")
    with pytest.raises(InvalidInput, match=r"line 1: expected a JSON object"):
        parse("f.jsonl", b'["a"]\n', "jsonl")
    with pytest.raises(InvalidInput, match=r"which column holds the text.*columns: body2"):
        parse("f.jsonl", b'{"body2": "a"}\n', "jsonl")
    with pytest.raises(InvalidInput, match=r"no column 'nope'"):
        parse("f.jsonl", b'{"text": "a"}\n', "jsonl", text_column="nope")


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("empty.txt", b"", "the file is empty"),
        ("x.exe", b"MZ...", "unsupported file type '.exe'"),
        ("noext", b"hello", "unsupported file type"),
        ("bin.txt", b"\x00\x01\x02binary", "looks like a binary file"),
        ("latin.txt", "café".encode("latin-1"), "not UTF-8 text"),
        ("blank.md", b"   \n\n  ", "no text found"),
        ("bad.pdf", b"%PDF-1.4 this is not really a pdf", "not a readable PDF"),
        ("bad.docx", b"PK\x03\x04 not a zip", "not a readable .docx"),
    ],
)
def test_bad_files_are_refused_with_name_and_reason(name, data, reason):
    with pytest.raises(InvalidInput) as e:
        bounded.parse_upload(name, data, isolate=False)
    assert name in e.value.message and reason in e.value.message


def test_encrypted_pdf_is_refused():
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(100, 100)
    w.encrypt("secret", algorithm="RC4-128")
    buf = io.BytesIO()
    w.write(buf)
    with pytest.raises(InvalidInput, match="locked.pdf: the PDF is encrypted"):
        bounded.parse_upload("locked.pdf", buf.getvalue(), isolate=False)


def test_oversize_is_refused_before_parsing():
    with pytest.raises(InvalidInput, match="big.txt: 2,000 bytes is over the size limit of 1,000"):
        bounded.parse_upload("big.txt", b"a" * 2000, max_bytes=1000)


def test_isolated_parse_works_and_time_limit_kills_a_slow_parse():
    fmt, [doc] = bounded.parse_upload("p.pdf", make_pdf(["isolated worker"]), timeout_s=60)
    assert fmt == "pdf" and doc.sections[0].text == "isolated worker"
    huge = b"<html><body>" + b"<div><p>word " * 200_000 + b"</body></html>"
    with pytest.raises(InvalidInput, match=r"slow.html: parsing took longer than the limit of 0.05 s"):
        bounded.parse_upload("slow.html", huge, timeout_s=0.05)
    # The killed worker is replaced: the next upload parses normally.
    assert bounded.parse_upload("again.pdf", make_pdf(["fine"]), timeout_s=60)[1][0].sections[0].text == "fine"
