"""Knowledge bases: ingest documents, chunk, embed, hybrid search, citations for the RAG rung."""
