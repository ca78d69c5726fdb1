"""Knowledge-base fixtures: a tiny deterministic embedder (bag of hashed words) and document builders."""

from __future__ import annotations

import hashlib
import io
import re

import numpy as np
import pytest

from ladder.knowledge import embedder as embedder_mod


class HashEmbedder:
    """Words hashed into 64 dimensions: texts sharing words are similar. Fast, no weights."""

    max_tokens = 256

    def __init__(self, name: str = "hash-64", dim: int = 64):
        self.name, self.dim = name, dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
        return out

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [max(1, len(t) // 4) for t in texts]


@pytest.fixture
def fake_embedder():
    """The HashEmbedder put in place of MiniLM for the test."""
    emb = HashEmbedder()
    previous = embedder_mod.set_embedder(emb)
    yield emb
    embedder_mod.set_embedder(previous)


def make_pdf(pages: list[str]) -> bytes:
    """A small valid PDF with one line of Helvetica text per page."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        None,
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents {content} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(len(objects))
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{n} 0 obj\n{body}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()
