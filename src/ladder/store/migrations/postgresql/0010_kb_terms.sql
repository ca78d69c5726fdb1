-- Document frequency of each lexeme per knowledge base, kept in the transaction that adds or removes
-- chunks. Keyword search ranks only the chunks holding the query's rarer lexemes (knowledge/pg_search.py):
-- a common word matches half of a large KB, and ranking every match costs tens of milliseconds.
CREATE TABLE kb_terms (
    kb_id TEXT NOT NULL,
    lexeme TEXT NOT NULL,
    df BIGINT NOT NULL,
    PRIMARY KEY (kb_id, lexeme)
);
INSERT INTO kb_terms(kb_id, lexeme, df)
SELECT c.kb_id, t.lexeme, count(*) FROM kb_chunks c, unnest(c.tsv) t GROUP BY c.kb_id, t.lexeme;
