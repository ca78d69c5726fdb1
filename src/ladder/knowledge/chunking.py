"""Token-aware recursive chunking: split on paragraphs, then lines, then sentences, then words, never inside one."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

from ladder.errors import InvalidInput
from ladder.knowledge.parsers import Section

# MiniLM reads at most 256 word pieces and was trained on ~128; 200 leaves room for the heading path
# that is embedded with each chunk, and is long enough for a FAQ answer or a few paragraphs.
DEFAULT_CHUNK_SIZE = 200
# About 15%: a sentence cut at a chunk boundary still appears whole in one of the two chunks.
DEFAULT_CHUNK_OVERLAP = 30
MIN_CHUNK_SIZE, MAX_CHUNK_SIZE = 16, 256

_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f][\"'\)\]\u201d\u2019]*$")


@dataclass
class Chunk:
    text: str
    tokens: int
    position: int
    heading: str | None = None
    page: int | None = None


def check_settings(chunk_size: int, chunk_overlap: int) -> None:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise InvalidInput(
            f"chunk_size {chunk_size} must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} "
            "tokens (the embedder reads at most 256)",
            param="chunk_size",
        )
    if not 0 <= chunk_overlap <= chunk_size // 2:
        raise InvalidInput(
            f"chunk_overlap {chunk_overlap} must be between 0 and half the chunk size ({chunk_size // 2})",
            param="chunk_overlap",
        )


def chunk_sections(
    sections: list[Section],
    chunk_size: int,
    chunk_overlap: int,
    count_tokens: Callable[[list[str]], list[int]],
) -> list[Chunk]:
    """Chunks of at most chunk_size tokens (a single word longer than that is its own chunk)."""
    out: list[Chunk] = []
    for section in sections:
        for text, tokens in _split(section.text, chunk_size, chunk_overlap, count_tokens):
            out.append(Chunk(text, tokens, len(out), section.heading, section.page))
    return out


def _split(text: str, size: int, overlap: int, count_tokens) -> list[tuple[str, int]]:
    spans = [m.span() for m in _WORD.finditer(text)]
    if not spans:
        return []
    words = [text[a:b] for a, b in spans]
    prefix = [0, *accumulate(count_tokens(words))]

    def tokens(a: int, b: int) -> int:
        return prefix[b] - prefix[a]

    gaps = [""] + [text[spans[i - 1][1] : spans[i][0]] for i in range(1, len(spans))]
    # Boundary strength before word i: 3 paragraph, 2 line, 1 sentence, 0 word.
    strength = [3] + [
        3 if g.count("\n") >= 2 else 2 if "\n" in g else 1 if _SENTENCE_END.search(words[i - 1]) else 0
        for i, g in enumerate(gaps)
        if i > 0
    ]

    def pieces(a: int, b: int, level: int) -> list[tuple[int, int]]:
        if tokens(a, b) <= size or b - a == 1:
            return [(a, b)]
        cuts = [i for i in range(a + 1, b) if strength[i] >= level] if level > 0 else list(range(a + 1, b))
        bounds = [a, *cuts, b]
        out = []
        for s, e in zip(bounds, bounds[1:], strict=False):
            out += pieces(s, e, level - 1) if level > 0 else [(s, e)]
        return out

    units = pieces(0, len(words), 3)
    sentence_starts = [i for i in range(len(words)) if strength[i] >= 1]
    chunks: list[tuple[int, int]] = []
    start, end = 0, 0
    for a, b in units:
        if end > start and tokens(start, b) > size:
            chunks.append((start, end))
            start = _overlap_start(start, end, overlap, prefix, sentence_starts)
            if tokens(start, b) > size:
                start = a
        end = b
    chunks.append((start, end))
    return [(text[spans[s][0] : spans[e - 1][1]], tokens(s, e)) for s, e in chunks]


def _overlap_start(prev_start: int, end: int, overlap: int, prefix: list[int], sentence_starts: list[int]) -> int:
    """Where the next chunk starts: the earliest word keeping the overlap within budget, at a sentence
    start when one lies inside the overlap."""
    if overlap <= 0:
        return end
    # smallest s with prefix[end] - prefix[s] <= overlap
    s = bisect_left(prefix, prefix[end] - overlap, lo=prev_start + 1, hi=end)
    s = max(s, prev_start + 1)
    k = bisect_left(sentence_starts, s)
    if k < len(sentence_starts) and sentence_starts[k] < end:
        return sentence_starts[k]
    return min(s, end)
