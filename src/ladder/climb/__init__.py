"""The ladder: climb prompt -> few-shot -> RAG -> fine-tune on one test set and recommend the cheapest rung."""
