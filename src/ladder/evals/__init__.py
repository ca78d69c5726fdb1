"""Evaluation: run a pipeline over a test set, score it, keep the run, compare runs."""
