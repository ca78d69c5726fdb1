"""Pipelines: a model + prompt + few-shot examples + knowledge bases + parser; one object for chat and eval."""
