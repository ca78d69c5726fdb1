"""llguidance grammars for a `Constraint`, shared by the torch and llama.cpp backends (no torch import).

Labels are the token sequences the model's tokenizer gives each label (llguidance's `<[id]>`
tokens): a grammar over the label strings would also let decoding spell a label with other
tokens ("activ" + "ate" for "activate"), while the label probabilities are computed on the
canonical tokens, so this keeps what is decoded and what is scored the same
(label_scores.greedy_choice). JSON follows the schema in one fixed layout; a regex is itself.
"""

from __future__ import annotations

from collections.abc import Callable

from ladder.models.constraints import Constraint

# JSON as Python's json.dumps writes it (", " and ": "), the form fine-tuning data is written in,
# and no free whitespace: a sampling model would otherwise spend its tokens on blanks.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
PARAM = {"choice": "labels", "json_schema": "schema", "regex": "pattern"}


def grammar_text(constraint: Constraint, encode: Callable[[str], list[int]]) -> str:
    """The llguidance grammar for a constraint; `encode` gives a label's tokens (no special tokens)."""
    import llguidance

    if constraint.kind == "choice":
        alternatives = (" ".join(f"<[{t}]>" for t in encode(c)) for c in constraint.choices)
        return llguidance.grammar_from("lark", "start: " + " | ".join(alternatives))
    if constraint.kind == "json_schema":
        return llguidance.LLMatcher.grammar_from_json_schema(constraint.schema_text, defaults=JSON_LAYOUT)
    return llguidance.grammar_from("regex", constraint.pattern)
