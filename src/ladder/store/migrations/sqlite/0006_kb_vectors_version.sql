-- Moved when a KB's stored vectors change in place (a reindex). A process that cached the KB's
-- vector matrix may patch it with the rows a document operation added or removed only while this
-- is unchanged; otherwise it reloads the whole matrix.
ALTER TABLE kbs ADD COLUMN vectors_version INTEGER NOT NULL DEFAULT 0;
