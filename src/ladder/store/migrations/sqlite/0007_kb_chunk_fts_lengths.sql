-- What FTS5's bm25() reads besides the postings, kept by ladder itself so that keyword search
-- (knowledge/keyword.py) never reads FTS5's private storage: each chunk's token count per FTS
-- column, and the row count and token total of the whole kb_fts table (bm25()'s N and average
-- length). The counts come from FTS5's own tokenizer, run through public interfaces when the chunk
-- is written (a temporary fts5 table and its fts5vocab instance table).
-- NULL: a chunk written before this migration (or by code that does not count); the next search
-- counts those once, in a write transaction (keyword.fill_lengths), and ranks through FTS5's own
-- bm25() while any is left.
ALTER TABLE kb_chunks ADD COLUMN fts_text_len INTEGER;
ALTER TABLE kb_chunks ADD COLUMN fts_heading_len INTEGER;
-- One KB's lengths by rowid, read from the index alone (a chunk row also holds its vector).
CREATE INDEX kb_chunks_fts_lengths ON kb_chunks(kb_id, rowid, fts_text_len, fts_heading_len);

-- One row, kept by the triggers below: kb_fts has exactly the rows of kb_chunks (its triggers).
CREATE TABLE kb_keyword_stats (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n_rows INTEGER NOT NULL,      -- rows of kb_chunks, all KBs: bm25()'s N
    n_tokens INTEGER NOT NULL,    -- sum of the lengths of the rows that have them
    n_unsized INTEGER NOT NULL,   -- rows whose lengths are NULL
    version INTEGER NOT NULL      -- moved by every row written, removed or counted
);
INSERT INTO kb_keyword_stats(id, n_rows, n_tokens, n_unsized, version)
    SELECT 1, COUNT(*), 0, COUNT(*), 0 FROM kb_chunks;

CREATE TRIGGER kb_chunks_keyword_stats_insert AFTER INSERT ON kb_chunks BEGIN
    UPDATE kb_keyword_stats SET
        n_rows = n_rows + 1,
        n_tokens = n_tokens + coalesce(new.fts_text_len + new.fts_heading_len, 0),
        n_unsized = n_unsized + (new.fts_text_len IS NULL OR new.fts_heading_len IS NULL),
        version = version + 1;
END;

CREATE TRIGGER kb_chunks_keyword_stats_delete AFTER DELETE ON kb_chunks BEGIN
    UPDATE kb_keyword_stats SET
        n_rows = n_rows - 1,
        n_tokens = n_tokens - coalesce(old.fts_text_len + old.fts_heading_len, 0),
        n_unsized = n_unsized - (old.fts_text_len IS NULL OR old.fts_heading_len IS NULL),
        version = version + 1;
END;

CREATE TRIGGER kb_chunks_keyword_stats_update AFTER UPDATE OF fts_text_len, fts_heading_len ON kb_chunks BEGIN
    UPDATE kb_keyword_stats SET
        n_tokens = n_tokens - coalesce(old.fts_text_len + old.fts_heading_len, 0)
            + coalesce(new.fts_text_len + new.fts_heading_len, 0),
        n_unsized = n_unsized - (old.fts_text_len IS NULL OR old.fts_heading_len IS NULL)
            + (new.fts_text_len IS NULL OR new.fts_heading_len IS NULL),
        version = version + 1;
END;
