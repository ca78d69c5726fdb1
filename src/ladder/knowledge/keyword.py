"""The keyword side of hybrid search: FTS5's BM25, scored over postings held in memory.

FTS5 computes bm25() row by row, and a common word matches half the corpus, so ranking every
matching row costs tens of milliseconds at 100k chunks. Here the index's own statistics are read
from FTS5 (which rows hold a term and how often, per column; row lengths; row count and average
length) and the score is FTS5's bm25() formula computed with numpy over all rows at once. A KB's
row lengths and the postings of the terms asked for are cached and, like the vector matrix,
patched when the KB changes (`delta.py`), so a term costs one read of its postings per process.
Tests check that the ranking equals FTS5's `ORDER BY bm25()`. A word the tokenizer splits into
several tokens (a phrase) and a document filter go to FTS5 directly.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from dataclasses import dataclass

import numpy as np

from ladder.knowledge import delta

MAX_QUERY_TERMS = 32
# bm25() weights of the text and heading columns (a word in a heading counts twice).
BM25_TEXT, BM25_HEADING = 1.0, 2.0
K1, B = 1.2, 0.75  # FTS5's bm25() constants (fts5_aux.c)
_TOKEN = re.compile(r"\w+")
# Dropped from the keyword query (not from the index): they match nearly every chunk, which costs
# time and adds nothing to BM25. A query made only of them keeps them.
# The NLTK English list, with apostrophes split the way the tokenizer splits them ("don't" -> don, t).
STOPWORDS = frozenset(
    """
a about above after again against all am an and any are aren as at be because been before being below between
both but by can couldn d did didn do does doesn doing don down during each few for from further had hadn has
hasn have haven having he her here hers herself him himself his how i if in into is isn it its itself just ll m
ma me mightn more most mustn my myself needn no nor not now o of off on once only or other our ours ourselves
out over own re s same shan she should shouldn so some such t than that the their theirs them themselves then
there these they this those through to too under until up ve very was wasn we were weren what when where which
while who whom why will with won wouldn y you your yours yourself yourselves
""".split()  # noqa: SIM905
)


def query_words(text: str) -> list[str]:
    """The distinct lowercased words of the user's text that the keyword query uses."""
    words = [w.lower() for w in _TOKEN.findall(text)]
    content = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(content))[:MAX_QUERY_TERMS]


def _literal(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def match_any(words: list[str]) -> str:
    """An FTS5 MATCH expression that treats every word as a quoted literal, OR-ed: user text is data."""
    return " OR ".join(_literal(w) for w in words)


@dataclass
class Scope:
    """Where to look: one KB's rowid range (its generation keys the cache), optionally some documents."""

    lo: int
    hi: int
    kb_id: str = ""
    generation: int = -1
    doc_filter: str | None = None  # JSON list of allowed doc ids


def top_rows(conn: sqlite3.Connection, db_path: str, words: list[str], scope: Scope, depth: int) -> list:
    """(rowid, BM25 score, higher is better) of the `depth` best rows for the OR of `words`, best first."""
    if not words:
        return []
    tokens = tokenize(conn, words, db_path)
    if scope.doc_filter is not None or any(len(t) > 1 for t in tokens):
        return fts5_top_rows(conn, words, scope, depth)
    _ensure_helpers(conn)
    stats = _global_stats(conn)
    terms = [t[0] for t in tokens if t]
    df = _row_counts(conn, db_path, stats, sorted(set(terms)))
    kb = _kb_terms(conn, db_path, scope)
    scores = np.zeros(len(kb.rowids))
    for term in terms:  # one phrase per word, as in the MATCH expression (a repeated stem counts twice)
        rows, tf = kb.postings(conn, term)
        if len(rows):
            tf = tf.astype(np.float64)  # bm25() computes in double
            norm = K1 * (1 - B + B * kb.lengths[rows] / stats.avgdl)
            scores[rows] += _idf(stats.rows, df.get(term, 0)) * (tf * (K1 + 1) / (tf + norm))
    scores[kb.dead] = 0.0
    hit = np.flatnonzero(scores)
    if len(hit) > depth:  # the rows scoring at least the depth-th best score; ties are cut by rowid
        kth = np.partition(scores[hit], len(hit) - depth)[len(hit) - depth]
        hit = hit[scores[hit] >= kth]
    return sorted(((int(kb.rowids[i]), float(scores[i])) for i in hit), key=lambda r: (-r[1], r[0]))[:depth]


def fts5_top_rows(conn: sqlite3.Connection, words: list[str], scope: Scope, depth: int) -> list:
    """The same ranking through FTS5's own `ORDER BY bm25()`: every matching row is scored."""
    sql = "SELECT rowid, -bm25(kb_fts, ?, ?) FROM kb_fts WHERE kb_fts MATCH ? AND rowid BETWEEN ? AND ?"
    args: list = [BM25_TEXT, BM25_HEADING, match_any(words), scope.lo, scope.hi]
    if scope.doc_filter is not None:
        sql += " AND rowid IN (SELECT rowid FROM kb_chunks WHERE doc_id IN (SELECT value FROM json_each(?)))"
        args.append(scope.doc_filter)
    sql += " ORDER BY bm25(kb_fts, ?, ?), rowid LIMIT ?"
    return conn.execute(sql, [*args, BM25_TEXT, BM25_HEADING, depth]).fetchall()


def _idf(rows: int, df: int) -> float:
    """FTS5 bm25()'s idf: log((N - n + 0.5) / (n + 0.5)), at least 1e-6."""
    idf = math.log((rows - df + 0.5) / (df + 0.5)) if rows else 0.0
    return idf if idf > 0 else 1e-6


# -- what FTS5 knows ---------------------------------------------------------------------------


@dataclass
class _Stats:
    rows: int  # rows of kb_fts, all KBs (bm25()'s N)
    avgdl: float  # mean tokens per row over all columns
    record: bytes = b""  # FTS5's averages record, which these come from


def _varints(blob: bytes) -> list[int]:
    """SQLite varints (7 bits a byte, big-endian; a 9th byte carries 8) as FTS5 writes them."""
    out, value, n = [], 0, 0
    for byte in blob:
        n += 1
        if n == 9:
            out.append((value << 8) | byte)
            value, n = 0, 0
            continue
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            out.append(value)
            value, n = 0, 0
    return out


def _global_stats(conn: sqlite3.Connection) -> _Stats:
    """From FTS5's averages record: the row count, then the token count of each column."""
    row = conn.execute("SELECT block FROM kb_fts_data WHERE id = 1").fetchone()
    numbers = _varints(row[0]) if row and row[0] else [0]
    rows = numbers[0]
    return _Stats(rows, sum(numbers[1:]) / rows if rows else 0.0, bytes(row[0]) if row and row[0] else b"")


_df_cache: dict[str, tuple[tuple, dict[str, int]]] = {}  # db path -> (index state, term -> rows)


def _row_counts(conn: sqlite3.Connection, db_path: str, stats: _Stats, terms: list[str]) -> dict[str, int]:
    """Rows of kb_fts (all KBs) holding each index term: the n of bm25()'s idf.

    Counting a common term's rows walks its whole doclist, so the counts are kept until the index
    changes: any document operation moves a KB's generation, and any row added or removed moves the
    averages record.
    """
    state = (stats.record, conn.execute("SELECT group_concat(id || ':' || generation) FROM kbs").fetchone()[0])
    with _lock:
        cached_state, counts = _df_cache.get(db_path, (None, {}))
        if cached_state != state:
            counts = {}
            _df_cache[db_path] = (state, counts)
    missing = [t for t in terms if t not in counts]
    if missing:
        marks = ",".join("?" * len(missing))
        found = dict(conn.execute(f"SELECT term, doc FROM temp.ladder_fts_rows WHERE term IN ({marks})", missing))
        counts.update({t: found.get(t, 0) for t in missing})
    return counts


_token_cache: dict[tuple[str, str], list[str]] = {}  # (db path, word) -> index terms
MAX_CACHED_WORDS = 100_000


def tokenize(conn: sqlite3.Connection, words: list[str], db_path: str = "") -> list[list[str]]:
    """Each word's index terms, by a tokenizer identical to kb_fts's (stemming, diacritics, splitting)."""
    known = [_token_cache.get((db_path, w)) for w in words] if db_path else [None] * len(words)
    missing = [w for w, t in zip(words, known, strict=True) if t is None]
    if missing:
        found = dict(zip(missing, _run_tokenizer(conn, missing), strict=True))
        if db_path:
            if len(_token_cache) > MAX_CACHED_WORDS:
                _token_cache.clear()
            _token_cache.update({(db_path, w): t for w, t in found.items()})
        known = [t if t is not None else found[w] for w, t in zip(words, known, strict=True)]
    return known


def _run_tokenizer(conn: sqlite3.Connection, words: list[str]) -> list[list[str]]:
    _ensure_helpers(conn)
    conn.executemany("INSERT INTO temp.ladder_query_words(rowid, w) VALUES (?, ?)", enumerate(words))
    try:
        tokens: list[list[str]] = [[] for _ in words]
        for doc, term in conn.execute("SELECT doc, term FROM temp.ladder_query_tokens ORDER BY doc, offset"):
            tokens[doc].append(term)
    finally:
        conn.execute("DELETE FROM temp.ladder_query_words")
    return tokens


def _ensure_helpers(conn: sqlite3.Connection) -> None:
    """Per-connection temp tables: a tokenizer like kb_fts's, and views of kb_fts's terms."""
    if conn.execute("SELECT 1 FROM temp.sqlite_master WHERE name = 'ladder_new_hits'").fetchone():
        return
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'kb_fts'").fetchone()[0]
    found = re.search(r"tokenize\s*=\s*'((?:[^']|'')*)'", sql)
    tokenize = f", tokenize='{found.group(1)}'" if found else ""
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.ladder_query_words USING fts5(w{tokenize})")
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.ladder_query_tokens"
        " USING fts5vocab(temp, ladder_query_words, instance)"
    )
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.ladder_fts_rows USING fts5vocab(main, kb_fts, row)")
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.ladder_fts_hits USING fts5vocab(main, kb_fts, instance)")
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.ladder_new_rows USING fts5(text, heading{tokenize})")
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.ladder_new_hits USING fts5vocab(temp, ladder_new_rows, instance)"
    )


# -- the per-KB cache --------------------------------------------------------------------------

MAX_CACHED_POSTINGS = 20_000_000  # entries over all KBs (160 MB); past it every cache starts over
MAX_PATCHED_ROWS = 5_000  # a change adding more rows drops the cached postings instead of patching them


class _KbTerms:
    """One KB generation: its rowids and row lengths, and the postings of the terms asked for so far."""

    def __init__(self, generation: int, rowids: np.ndarray, lengths: np.ndarray, scope: Scope, alive=None):
        self.generation, self.rowids, self.lengths, self.scope = generation, rowids, lengths, scope
        # rows of chunks removed since the last full read stay (their postings too) but never score
        self.dead = np.flatnonzero(~alive) if alive is not None else np.zeros(0, dtype=np.int64)
        self.postings_held = 0
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def postings(self, conn: sqlite3.Connection, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(row indexes, weighted term frequency) of the rows holding `term`."""
        found = self._postings.get(term)
        if found is None:
            docs, cols = conn.execute(
                "SELECT group_concat(doc), group_concat(col = 'heading', '') FROM temp.ladder_fts_hits"
                " WHERE term = ? AND doc BETWEEN ? AND ?",
                (term, self.scope.lo, self.scope.hi),
            ).fetchone()
            rowids, tf = _hits(docs, cols)
            self._keep(term, np.searchsorted(self.rowids, rowids), tf)
            found = self._postings[term]
        return found

    def _keep(self, term: str, rows: np.ndarray, tf: np.ndarray) -> None:
        _make_room(len(rows))
        # 8 bytes an entry: row indexes fit 32 bits, and frequencies (small sums of 1s and 2s) are
        # exact in float32; the score is computed in float64 all the same.
        self._postings[term] = (rows.astype(np.int32, copy=False), tf.astype(np.float32, copy=False))
        self.postings_held += len(rows)

    def moved_on(self, conn: sqlite3.Connection, scope: Scope, change: delta.Delta) -> _KbTerms:
        """This KB at a later generation: rows gone are marked dead (row indexes stay put); rows added
        are appended with their lengths and, for the terms cached here, their hits (read by
        tokenizing them as kb_fts did)."""
        _, lengths = _lengths(conn, "id IN (SELECT value FROM json_each(?))", json.dumps(change.added.tolist()))
        fresh = _KbTerms(
            scope.generation,
            np.concatenate([self.rowids, change.added]),
            np.concatenate([self.lengths, lengths]),
            scope,
            np.concatenate([change.keep, np.ones(len(change.added), dtype=bool)]),
        )
        if len(change.added) > MAX_PATCHED_ROWS:
            return fresh  # reading each term again on first use is cheaper than tokenizing that many rows
        added = _added_hits(conn, change.added, list(self._postings)) if len(change.added) else {}
        for term, (rows, tf) in list(self._postings.items()):
            if term in added:
                rowids, more = added[term]
                rows = np.concatenate([rows, len(self.rowids) + np.searchsorted(change.added, rowids)])
                tf = np.concatenate([tf, more]).astype(np.float32)
            fresh._postings[term] = (rows.astype(np.int32, copy=False), tf)  # mostly the same arrays: no new room
            fresh.postings_held += len(rows)
        return fresh

    def clear(self) -> None:
        self._postings, self.postings_held = {}, 0


def _hits(docs: str | None, cols: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(rowids, weighted term frequency) from group_concat'ed fts5vocab instance rows of one term."""
    if not docs:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    instances = np.fromstring(docs, dtype=np.int64, sep=",")
    heading = np.frombuffer(cols.encode(), dtype=np.uint8) == ord("1")
    weight = np.where(heading, BM25_HEADING, BM25_TEXT)
    if np.all(instances[1:] >= instances[:-1]):  # fts5vocab lists a term's hits by row
        starts = np.flatnonzero(np.r_[True, instances[1:] != instances[:-1]])
        return instances[starts], np.add.reduceat(weight, starts)
    unique, inverse = np.unique(instances, return_inverse=True)
    return unique, np.bincount(inverse, weights=weight)


def _added_hits(conn: sqlite3.Connection, added: np.ndarray, terms: list[str]) -> dict:
    """term -> (rowids, weighted tf) within the `added` rows, for the given terms."""
    rows = conn.execute(
        "SELECT rowid, text, heading FROM kb_fts WHERE rowid IN (SELECT value FROM json_each(?))",
        (json.dumps(added.tolist()),),
    ).fetchall()
    conn.executemany("INSERT INTO temp.ladder_new_rows(rowid, text, heading) VALUES (?, ?, ?)", rows)
    try:
        return {
            term: _hits(docs, cols)
            for term, docs, cols in conn.execute(
                "SELECT term, group_concat(doc), group_concat(col = 'heading', '') FROM temp.ladder_new_hits"
                " WHERE term IN (SELECT value FROM json_each(?)) GROUP BY term",
                (json.dumps(terms),),
            )
        }
    finally:
        conn.execute("DELETE FROM temp.ladder_new_rows")


def _lengths(conn: sqlite3.Connection, where: str, *args) -> tuple[np.ndarray, np.ndarray]:
    """(rowids, tokens per row over all columns) from FTS5's docsize table, by rowid."""
    rowids, lengths = [], []
    for rowid, sizes in conn.execute(f"SELECT id, sz FROM kb_fts_docsize WHERE {where} ORDER BY id", args):
        rowids.append(rowid)  # sizes: one varint per column, almost always one byte each
        lengths.append(sum(sizes) if max(sizes, default=0) < 0x80 else sum(_varints(sizes)))
    return np.array(rowids, dtype=np.int64), np.array(lengths, dtype=np.float64)


_kbs: dict[tuple[str, str], _KbTerms] = {}
_lock = threading.Lock()


def _kb_terms(conn: sqlite3.Connection, db_path: str, scope: Scope) -> _KbTerms:
    """The KB's cache at the scope's generation: the cached one patched when the KB moved on."""
    key = (db_path, scope.kb_id)
    with _lock:
        cached = _kbs.get(key)
    if cached is not None and cached.generation == scope.generation:
        return cached
    change = None
    if cached is not None:
        sql = "SELECT group_concat(id) FROM kb_fts_docsize WHERE id BETWEEN ? AND ?"
        change = delta.row_delta(cached.rowids, delta.rowids_in(conn, sql, scope.lo, scope.hi))
    if change is not None:
        fresh = cached.moved_on(conn, scope, change)
    else:
        fresh = _KbTerms(scope.generation, *_lengths(conn, "id BETWEEN ? AND ?", scope.lo, scope.hi), scope)
    with _lock:
        _kbs[key] = fresh
    return fresh


def _make_room(n: int) -> None:
    with _lock:
        if sum(k.postings_held for k in _kbs.values()) + n > MAX_CACHED_POSTINGS:
            for k in _kbs.values():
                k.clear()


def forget(db_path: str, kb_id: str) -> None:
    with _lock:
        _kbs.pop((db_path, kb_id), None)
