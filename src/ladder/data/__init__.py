"""Datasets: formats, validation, splits, stats and teacher labelling for fine-tuning data."""
