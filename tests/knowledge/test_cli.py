"""`ladder kb` commands end to end (with the small test embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ladder.cli.main import app

pytestmark = pytest.mark.usefixtures("fake_embedder")


def test_kb_commands(tmp_path: Path):
    runner = CliRunner()
    doc = tmp_path / "guide.md"
    doc.write_text("# Guide\n\n## Shipping\n\nParcels arrive in two weeks.\n\n## Refunds\n\nRefunds take five days.\n")
    faq = tmp_path / "faq.jsonl"
    faq.write_text(json.dumps({"q": "How do I log in?", "a": "Use the login page.", "team": "it"}) + "\n")

    def ok(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    assert "created guide" in ok("kb", "create", "guide", "--chunk-size", "64")
    out = ok("kb", "add", "guide", str(doc), str(faq), "--text-column", "q,a", "--meta", "lang=en")
    assert "added: guide.md (1 documents, 2 chunks)" in out and "added: faq.jsonl" in out
    assert "unchanged: guide.md" in ok("kb", "add", "guide", str(doc))
    assert "faq.jsonl#1" in ok("kb", "docs", "guide")
    hits = json.loads(ok("kb", "search", "guide", "refunds five days", "-k", "2", "--json"))
    assert hits[0]["heading"] == "Guide > Refunds" and hits[0]["metadata"]["lang"] == "en"
    assert "[1] guide.md, Guide > Refunds" in ok("kb", "search", "guide", "refunds five days")
    filtered = json.loads(ok("kb", "search", "guide", "login", "--filter", "team=it", "--json"))
    assert [h["doc_name"] for h in filtered] == ["faq.jsonl#1"]
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"question": "parcels arrive", "doc": "guide.md"}) + "\n")
    assert "recall@5 1.000" in ok("kb", "eval", "guide", str(q))
    assert "re-embedded 3 chunks" in ok("kb", "reindex", "guide")
    assert "removed 1 document" in ok("kb", "rm", "guide", "faq.jsonl")
    assert "guide" in ok("kb", "list")
    bad = runner.invoke(app, ["kb", "rm", "guide", "nope"])
    assert bad.exit_code != 0 and "no document 'nope'" in str(bad.exception)
    assert "deleted guide" in ok("kb", "delete", "guide", "--yes")
