"""The advisor: from a few questions about the task, the rung to start on, why, and the data it needs."""

from __future__ import annotations

from dataclasses import dataclass, field

RUNGS = ("prompt", "few-shot", "rag", "fine-tune", "fine-tune + rag")

# (minimum, recommended) examples per task type; the datasets part owns the numbers.
try:
    from ladder.data.validate import TASK_MINIMUMS
except ImportError:  # landing in parallel
    TASK_MINIMUMS = {
        "classification": (200, 2000),
        "extraction": (500, 5000),
        "style": (500, 2000),
        "knowledge": (1000, 10000),
        "open": (2000, 20000),
    }


@dataclass
class Answers:
    task: str = "classification"
    knowledge_external: bool = False  # the answers depend on documents/facts the model cannot know
    knowledge_changes: bool = False
    style_matters: bool = False  # a strict format or house style
    examples: int = 0
    low_latency: bool = False
    low_cost: bool = False
    narrow: bool = True  # one narrow task rather than general chat
    explainability: bool = False  # answers must point at their sources


@dataclass
class Advice:
    start: str
    reasons: list[str] = field(default_factory=list)
    minimum: int = 0
    recommended: int = 0
    fine_tune_allowed: bool = False
    path: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"Start at: {self.start}"] + [f"  - {r}" for r in self.reasons]
        out.append(
            f"Fine-tuning a {self.task_word} task needs at least {self.minimum} examples "
            f"({self.recommended} recommended); you have {self.examples}."
        )
        out.append("Climb: " + " -> ".join(self.path))
        return out

    task_word: str = "classification"
    examples: int = 0


def advise(a: Answers) -> Advice:
    """Most tasks should start with a prompt; knowledge goes to RAG, not weights; tuning needs data."""
    minimum, recommended = TASK_MINIMUMS.get(a.task, TASK_MINIMUMS["open"])
    enough = a.examples >= minimum
    reasons: list[str] = []
    path = ["prompt"]
    if a.examples >= 3:
        path.append("few-shot")
    if a.knowledge_external or a.knowledge_changes or a.explainability:
        path.append("rag")
    if enough and (a.style_matters or a.low_latency or a.low_cost or a.narrow):
        path.append("fine-tune")
        if "rag" in path:
            path.append("fine-tune + rag")
    start = "prompt"
    if a.knowledge_external or a.knowledge_changes:
        start = "rag"
        reasons.append(
            "the answers depend on your own documents"
            + (" that change" if a.knowledge_changes else "")
            + ": put knowledge in a knowledge base (RAG), not in the weights, "
            "so updates take effect at once"
        )
    if a.explainability:
        reasons.append("answers must be explainable: RAG cites the passages it used; a tuned model cannot say why")
        start = "rag" if start == "prompt" else start
    if start == "prompt":
        reasons.append(
            "a clear instruction with an exact output format costs nothing and often suffices; measure it first"
        )
        if a.examples >= 3:
            reasons.append(f"with {a.examples} examples, few-shot prompting is the next cheap step")
    if a.style_matters:
        reasons.append(
            "a strict format or house style is what fine-tuning teaches best"
            + ("" if enough else f", but only with at least {minimum} examples")
        )
    if a.low_latency or a.low_cost:
        why = (
            "latency"
            if a.low_latency and not a.low_cost
            else "cost"
            if a.low_cost and not a.low_latency
            else "latency and cost"
        )
        reasons.append(
            f"for {why}, a small tuned model with a short prompt can replace a large prompted one"
            + ("" if enough else f" once you have {minimum}+ examples")
        )
    if not a.narrow:
        reasons.append("a general task is hard to fine-tune for without forgetting; prefer prompting and RAG")
    if not enough:
        reasons.append(
            f"{a.examples} examples is below the {minimum} a {a.task} fine-tune needs: "
            "the ladder will not fine-tune unless forced"
        )
    return Advice(start, reasons, minimum, recommended, enough, path, a.task, a.examples)
