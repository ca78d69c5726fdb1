"""The reranking seam: reorder the fused candidates before the top k are cut.

No cross-encoder ships offline with this platform, so none is on by default; anything with a
`rerank(query, hits) -> hits` method plugs in (for example a sentence-transformers CrossEncoder
loaded from a local directory, `CrossEncoderReranker(path)`).
"""

from __future__ import annotations

from typing import Protocol

from ladder.knowledge.index import Hit


class Reranker(Protocol):
    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        """The same hits, best first; may set `score`."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder from a local directory (never downloaded)."""

    def __init__(self, path: str) -> None:
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(path, device="cpu", local_files_only=True)

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        scores = self.model.predict([(query, h.text) for h in hits], show_progress_bar=False)
        for hit, score in zip(hits, scores, strict=True):
            hit.score = float(score)
        return sorted(hits, key=lambda h: -h.score)
