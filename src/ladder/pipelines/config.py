"""A pipeline's configuration: what a bot version stores and what a rung of the ladder is."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields

from ladder.errors import InvalidInput
from ladder.models.types import GenerationParams
from ladder.pipelines.parsers import ParserSpec

SHOT_MODES = ("fixed", "retrieved")


@dataclass
class PipelineConfig:
    """Model + system prompt + output instruction + few-shot examples + knowledge bases + generation + parser.

    `few_shot` holds {"input", "output"} pairs: in "fixed" mode the first `few_shot_k` (0 = all)
    go into every prompt; in "retrieved" mode the `few_shot_k` most similar to the request do.
    """

    model: str
    system_prompt: str = ""
    output_instruction: str = ""
    # How each user input is framed, e.g. "Message: {input}\nCategory:"; shots use it too.
    input_template: str = ""
    few_shot: list[dict] = field(default_factory=list)
    few_shot_mode: str = "fixed"
    few_shot_k: int = 0
    kbs: list[str] = field(default_factory=list)
    retrieval_k: int = 4
    retrieval_threshold: float | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    stop: list[str] = field(default_factory=list)
    parser: ParserSpec = field(default_factory=ParserSpec)
    backend: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.parser, dict):
            self.parser = ParserSpec(**self.parser)
        if not self.model:
            raise InvalidInput("a pipeline needs a model", param="model")
        if self.few_shot_mode not in SHOT_MODES:
            raise InvalidInput(f"few_shot_mode must be one of {', '.join(SHOT_MODES)}", param="few_shot_mode")
        if self.few_shot_k < 0 or self.retrieval_k < 1:
            raise InvalidInput("few_shot_k must be >= 0 and retrieval_k >= 1", param="few_shot_k")
        for i, ex in enumerate(self.few_shot):
            if not isinstance(ex, dict) or not isinstance(ex.get("input"), str) or not isinstance(
                    ex.get("output"), str):
                raise InvalidInput(f"few_shot[{i}] must be {{\"input\": text, \"output\": text}}",
                                   param="few_shot")
        if self.input_template and "{input}" not in self.input_template:
            raise InvalidInput("input_template must contain {input}", param="input_template")
        if self.few_shot_mode == "retrieved" and self.few_shot and not self.few_shot_k:
            raise InvalidInput("retrieved few-shot needs few_shot_k >= 1", param="few_shot_k")

    def frame(self, text: str) -> str:
        return self.input_template.replace("{input}", text) if self.input_template else text

    @property
    def params(self) -> GenerationParams:
        return GenerationParams(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                                seed=self.seed, stop=list(self.stop))

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["parser"] = self.parser.as_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PipelineConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidInput(f"unknown pipeline setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def replace(self, **changes) -> PipelineConfig:
        d = self.as_dict()
        d.update(changes)
        return PipelineConfig.from_dict(d)
