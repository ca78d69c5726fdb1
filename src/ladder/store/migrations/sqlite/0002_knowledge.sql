-- Knowledge bases: documents, chunks with their vectors, and the FTS5 keyword index.
-- A document operation changes chunks, kb_fts (through the triggers) and kbs.generation in one
-- transaction; the generation tells every process that its in-memory vector matrix is stale.
CREATE TABLE kbs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    -- Chunk rowids of this KB are num << 32 | seq: a KB is one rowid range, which FTS5 filters
    -- by seeking instead of reading a column of every matching row.
    num INTEGER NOT NULL UNIQUE,
    chunk_seq INTEGER NOT NULL DEFAULT 0,
    chunk_size INTEGER NOT NULL,
    chunk_overlap INTEGER NOT NULL,
    embed_model TEXT NOT NULL,
    embed_dim INTEGER NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    UNIQUE(project_id, name)
);

-- One row per document; a .csv/.jsonl upload gives one document per row, all with the same source.
CREATE TABLE kb_docs (
    id TEXT PRIMARY KEY,
    kb_id TEXT NOT NULL REFERENCES kbs(id),
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,            -- as the user gave it (display only, never a path on disk)
    source TEXT NOT NULL,          -- the uploaded file's name
    source_sha256 TEXT NOT NULL,   -- of the whole upload: same content again is a no-op
    file_id TEXT,                  -- the original bytes (files table, stored under a generated id)
    format TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    n_chunks INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX kb_docs_kb_source ON kb_docs(kb_id, source);
CREATE INDEX kb_docs_kb_sha ON kb_docs(kb_id, source_sha256);

CREATE TABLE kb_chunks (
    rowid INTEGER PRIMARY KEY,     -- the FTS5 rowid: kbs.num << 32 | kbs.chunk_seq
    id TEXT NOT NULL UNIQUE,
    kb_id TEXT NOT NULL,
    doc_id TEXT NOT NULL REFERENCES kb_docs(id),
    position INTEGER NOT NULL,     -- order of the chunk inside its document
    text TEXT NOT NULL,
    heading TEXT,                  -- heading path "A > B" for Markdown/HTML/DOCX
    page INTEGER,                  -- 1-based page for PDF
    tokens INTEGER NOT NULL,
    chunk_size INTEGER NOT NULL,   -- the settings this chunk was made with
    chunk_overlap INTEGER NOT NULL,
    embedding BLOB NOT NULL        -- float32, L2-normalised, kbs.embed_dim values
);
CREATE INDEX kb_chunks_kb ON kb_chunks(kb_id, rowid);
CREATE INDEX kb_chunks_doc ON kb_chunks(doc_id);

CREATE VIRTUAL TABLE kb_fts USING fts5(
    text, heading, kb_id UNINDEXED,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER kb_chunks_fts_insert AFTER INSERT ON kb_chunks BEGIN
    INSERT INTO kb_fts(rowid, text, heading, kb_id) VALUES (new.rowid, new.text, new.heading, new.kb_id);
END;

CREATE TRIGGER kb_chunks_fts_delete AFTER DELETE ON kb_chunks BEGIN
    DELETE FROM kb_fts WHERE rowid = old.rowid;
END;
