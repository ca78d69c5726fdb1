"""The keyword side of hybrid search: FTS5's BM25, scored over postings held in memory.

FTS5 computes bm25() row by row, and a common word matches half the corpus, so ranking every
matching row costs tens of milliseconds at 100k chunks. Here the score is FTS5's bm25() formula
computed with numpy over all rows at once, from what bm25() reads, taken through public interfaces
only (never FTS5's shadow tables, whose format no SQLite release promises to keep):

- which rows hold a term and how often, per column: the `fts5vocab` instance table of kb_fts;
- each term's row count (the n of idf): the `fts5vocab` row table;
- each row's token count per column: `kb_chunks.fts_text_len` / `fts_heading_len`, counted when the
  chunk is written by running its text through a temporary fts5 table with kb_fts's tokenizer and
  counting that table's `fts5vocab` instance rows (`fts_lengths`);
- the row count and token total of the whole kb_fts table (all KBs, as bm25() uses them):
  `kb_keyword_stats`, kept by triggers on kb_chunks (migration 0007).

Chunks written before those columns existed have NULL lengths: `fill_lengths` counts them once, in
a write transaction, before a search opens its snapshot; while any is left the query goes to FTS5's
own `ORDER BY bm25()`, so the ranking never changes. A KB's row lengths and the postings of the
terms asked for are cached per `Database` (`db.caches["keyword"]`, nothing at module level) and,
like the vector matrix, patched when the KB changes (`delta.py`), so a term costs one read of its
postings per process. Tests check that the ranking equals FTS5's `ORDER BY bm25()`. A word the
tokenizer splits into several tokens (a phrase) and a document filter go to FTS5 directly.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ladder.knowledge import delta

if TYPE_CHECKING:
    from ladder.store.db import Database

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


def top_rows(conn: sqlite3.Connection, db: Database, words: list[str], scope: Scope, depth: int) -> list:
    """(rowid, BM25 score, higher is better) of the `depth` best rows for the OR of `words`, best first.

    `conn` is the connection (and snapshot) to read; `db` the Database whose caches to use."""
    if not words:
        return []
    cache = _cache(db)
    tokens = tokenize(conn, words, db)
    stats = _global_stats(conn)
    if scope.doc_filter is not None or any(len(t) > 1 for t in tokens) or stats.unsized:
        return fts5_top_rows(conn, words, scope, depth)
    _ensure_helpers(conn)
    terms = [t[0] for t in tokens if t]
    df = _row_counts(conn, cache, stats, sorted(set(terms)))
    kb = _kb_terms(conn, cache, scope)
    scores = np.zeros(len(kb.rowids))
    for term in terms:  # one phrase per word, as in the MATCH expression (a repeated stem counts twice)
        rows, tf = kb.postings(conn, cache, term)
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


# -- the caches of one Database ----------------------------------------------------------------

MAX_CACHED_POSTINGS = 20_000_000  # entries over all KBs of a Database (160 MB); past it every KB starts over
MAX_PATCHED_ROWS = 5_000  # a change adding more rows drops the cached postings instead of patching them
MAX_CACHED_WORDS = 100_000


@dataclass
class _Cache:
    """What keyword search keeps between queries for one Database (`db.caches["keyword"]`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    kbs: dict[str, _KbTerms] = field(default_factory=dict)  # KB id -> its rows, lengths and postings
    tokens: dict[str, list[str]] = field(default_factory=dict)  # query word -> index terms
    df_version: int | None = None  # kb_keyword_stats.version the row counts are for
    df: dict[str, int] = field(default_factory=dict)  # index term -> rows of kb_fts holding it


def _cache(db: Database) -> _Cache:
    with db.caches_lock:
        found = db.caches.get("keyword")
        if found is None:
            found = db.caches["keyword"] = _Cache()
        return found  # type: ignore[return-value]


def forget(db: Database, kb_id: str) -> None:
    """Drop what is cached for the KB (it was deleted)."""
    cache = _cache(db)
    with cache.lock:
        cache.kbs.pop(kb_id, None)


# -- what FTS5 knows, through its public interfaces --------------------------------------------


@dataclass
class _Stats:
    rows: int  # rows of kb_fts, all KBs (bm25()'s N)
    avgdl: float  # mean tokens per row over all columns
    version: int  # moves with every row written, removed or counted
    unsized: int  # rows whose lengths are not counted yet


def _global_stats(conn: sqlite3.Connection) -> _Stats:
    """bm25()'s row count and average length for the whole kb_fts table, from kb_keyword_stats."""
    rows, tokens, unsized, version = conn.execute(
        "SELECT n_rows, n_tokens, n_unsized, version FROM kb_keyword_stats"
    ).fetchone()
    return _Stats(rows, tokens / rows if rows else 0.0, version, unsized)


def _row_counts(conn: sqlite3.Connection, cache: _Cache, stats: _Stats, terms: list[str]) -> dict[str, int]:
    """Rows of kb_fts (all KBs) holding each index term: the n of bm25()'s idf.

    Counting a common term's rows walks its whole doclist, so the counts are kept until a row is
    written or removed anywhere (which moves kb_keyword_stats.version).
    """
    with cache.lock:
        if cache.df_version != stats.version:
            cache.df_version, cache.df = stats.version, {}
        counts = cache.df
    missing = [t for t in terms if t not in counts]
    if missing:
        marks = ",".join("?" * len(missing))
        found = dict(conn.execute(f"SELECT term, doc FROM temp.ladder_fts_rows WHERE term IN ({marks})", missing))
        counts.update({t: found.get(t, 0) for t in missing})
    return counts


def tokenize(conn: sqlite3.Connection, words: list[str], db: Database | None = None) -> list[list[str]]:
    """Each word's index terms, by a tokenizer identical to kb_fts's (stemming, diacritics, splitting).

    With `db`, the words' terms are kept in its cache."""
    cache = _cache(db) if db is not None else None
    known = [cache.tokens.get(w) for w in words] if cache is not None else [None] * len(words)
    missing = [w for w, t in zip(words, known, strict=True) if t is None]
    if missing:
        found = dict(zip(missing, _run_tokenizer(conn, missing), strict=True))
        if cache is not None:
            with cache.lock:
                if len(cache.tokens) > MAX_CACHED_WORDS:
                    cache.tokens.clear()
                cache.tokens.update(found)
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
    """Per-connection temp tables: tokenizers like kb_fts's, and views of kb_fts's terms."""
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
    # Contentless: only its index is read, and 'delete-all' empties it at once.
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.ladder_new_rows USING fts5(text, heading, content=''{tokenize})"
    )
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.ladder_new_hits USING fts5vocab(temp, ladder_new_rows, instance)"
    )


# -- row lengths, counted by FTS5's tokenizer --------------------------------------------------

LENGTH_BATCH = 2_000  # rows tokenized at a time when counting lengths


def fts_lengths(conn: sqlite3.Connection, rows: list[tuple[str, str | None]]) -> list[tuple[int, int]]:
    """(text tokens, heading tokens) of each (text, heading) as kb_fts counts them (bm25()'s column
    sizes): the rows go through a temporary fts5 table with kb_fts's tokenizer and its instance
    rows are counted per row and column. Store them in kb_chunks.fts_text_len / fts_heading_len."""
    _ensure_helpers(conn)
    out: list[tuple[int, int]] = []
    for start in range(0, len(rows), LENGTH_BATCH):
        part = rows[start : start + LENGTH_BATCH]
        text_len, heading_len = _count_tokens(conn, [(i + 1, t, h) for i, (t, h) in enumerate(part)], len(part) + 1)
        out += zip(text_len[1:].tolist(), heading_len[1:].tolist(), strict=True)
    return out


def _count_tokens(conn: sqlite3.Connection, rows: list[tuple[int, str, str | None]], size: int):
    conn.executemany("INSERT INTO temp.ladder_new_rows(rowid, text, heading) VALUES (?, ?, ?)", rows)
    try:
        docs, cols = conn.execute(
            "SELECT group_concat(doc), group_concat(col = 'heading', '') FROM temp.ladder_new_hits"
        ).fetchone()
    finally:
        conn.execute("INSERT INTO temp.ladder_new_rows(ladder_new_rows) VALUES ('delete-all')")
    if not docs:
        return np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
    instances = np.fromstring(docs, dtype=np.int64, sep=",")
    heading = np.frombuffer(cols.encode(), dtype=np.uint8) == ord("1")
    return np.bincount(instances[~heading], minlength=size), np.bincount(instances[heading], minlength=size)


def fill_lengths(db: Database) -> int:
    """Count the lengths of the chunks that have none (written before migration 0007), all KBs,
    in one write transaction; returns how many were counted. Cheap when there are none."""
    conn = db.connect()
    if conn.in_transaction or not _global_stats(conn).unsized:
        return 0  # inside a caller's transaction, searches rank through FTS5 until a later call
    with db.tx() as tx:
        missing = delta.rowids_in(
            tx,
            "SELECT group_concat(rowid) FROM kb_chunks INDEXED BY kb_chunks_fts_lengths"
            " WHERE fts_text_len IS NULL OR fts_heading_len IS NULL",
        )
        for start in range(0, len(missing), LENGTH_BATCH):
            rows = tx.execute(
                "SELECT rowid, text, heading FROM kb_chunks WHERE rowid IN (SELECT value FROM json_each(?))",
                (json.dumps(missing[start : start + LENGTH_BATCH].tolist()),),
            ).fetchall()
            lengths = fts_lengths(tx, [(r[1], r[2]) for r in rows])
            tx.executemany(
                "UPDATE kb_chunks SET fts_text_len = ?, fts_heading_len = ? WHERE rowid = ?",
                [(t, h, r[0]) for (t, h), r in zip(lengths, rows, strict=True)],
            )
    return len(missing)


# -- the per-KB cache --------------------------------------------------------------------------


class _KbTerms:
    """One KB generation: its rowids and row lengths, and the postings of the terms asked for so far."""

    def __init__(self, generation: int, rowids: np.ndarray, lengths: np.ndarray, scope: Scope, alive=None):
        self.generation, self.rowids, self.lengths, self.scope = generation, rowids, lengths, scope
        # rows of chunks removed since the last full read stay (their postings too) but never score
        self.dead = np.flatnonzero(~alive) if alive is not None else np.zeros(0, dtype=np.int64)
        self.postings_held = 0
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def postings(self, conn: sqlite3.Connection, cache: _Cache, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(row indexes, weighted term frequency) of the rows holding `term`."""
        found = self._postings.get(term)
        if found is None:
            docs, cols = conn.execute(
                "SELECT group_concat(doc), group_concat(col = 'heading', '') FROM temp.ladder_fts_hits"
                " WHERE term = ? AND doc BETWEEN ? AND ?",
                (term, self.scope.lo, self.scope.hi),
            ).fetchone()
            rowids, tf = _hits(docs, cols)
            _make_room(cache, len(rowids))
            self._keep(term, np.searchsorted(self.rowids, rowids), tf)
            found = self._postings[term]
        return found

    def _keep(self, term: str, rows: np.ndarray, tf: np.ndarray) -> None:
        # 8 bytes an entry: row indexes fit 32 bits, and frequencies (small sums of 1s and 2s) are
        # exact in float32; the score is computed in float64 all the same.
        self._postings[term] = (rows.astype(np.int32, copy=False), tf.astype(np.float32, copy=False))
        self.postings_held += len(rows)

    def moved_on(self, conn: sqlite3.Connection, scope: Scope, change: delta.Delta) -> _KbTerms:
        """This KB at a later generation: rows gone are marked dead (row indexes stay put); rows added
        are appended with their lengths and, for the terms cached here, their hits (read by
        tokenizing them as kb_fts did)."""
        rowids, lengths = _lengths(
            conn,
            "SELECT group_concat(rowid), group_concat(fts_text_len + fts_heading_len) FROM kb_chunks"
            " WHERE rowid IN (SELECT value FROM json_each(?))",
            json.dumps(change.added.tolist()),
        )
        if not np.array_equal(rowids, change.added):  # a row with no lengths: cannot happen once counted
            raise RuntimeError("chunks without FTS lengths in a KB being searched")
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
    _ensure_helpers(conn)
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
        conn.execute("INSERT INTO temp.ladder_new_rows(ladder_new_rows) VALUES ('delete-all')")


def _lengths(conn: sqlite3.Connection, sql: str, *args) -> tuple[np.ndarray, np.ndarray]:
    """(rowids, tokens per row over all columns), by rowid, from a query of two group_concats."""
    listed, sizes = conn.execute(sql, args).fetchone()
    if not listed:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    rowids = np.fromstring(listed, dtype=np.int64, sep=",")
    lengths = np.fromstring(sizes, dtype=np.float64, sep=",")
    if len(lengths) != len(rowids):  # group_concat skips NULLs
        raise RuntimeError("chunks without FTS lengths in a KB being searched")
    order = np.argsort(rowids, kind="stable")
    return rowids[order], lengths[order]


def _kb_lengths(conn: sqlite3.Connection, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
    return _lengths(
        conn,
        "SELECT group_concat(rowid), group_concat(fts_text_len + fts_heading_len)"
        " FROM kb_chunks INDEXED BY kb_chunks_fts_lengths WHERE kb_id = ? AND rowid BETWEEN ? AND ?",
        scope.kb_id,
        scope.lo,
        scope.hi,
    )


def _kb_terms(conn: sqlite3.Connection, cache: _Cache, scope: Scope) -> _KbTerms:
    """The KB's cache at the scope's generation: the cached one patched when the KB moved on."""
    with cache.lock:
        cached = cache.kbs.get(scope.kb_id)
    if cached is not None and cached.generation == scope.generation:
        return cached
    change = None
    if cached is not None:
        sql = "SELECT group_concat(rowid) FROM kb_chunks WHERE kb_id = ? AND rowid BETWEEN ? AND ?"
        change = delta.row_delta(cached.rowids, delta.rowids_in(conn, sql, scope.kb_id, scope.lo, scope.hi))
    if change is not None:
        fresh = cached.moved_on(conn, scope, change)
    else:
        fresh = _KbTerms(scope.generation, *_kb_lengths(conn, scope), scope)
    with cache.lock:
        cache.kbs[scope.kb_id] = fresh
    return fresh


def _make_room(cache: _Cache, n: int) -> None:
    with cache.lock:
        if sum(k.postings_held for k in cache.kbs.values()) + n > MAX_CACHED_POSTINGS:
            for k in cache.kbs.values():
                k.clear()
