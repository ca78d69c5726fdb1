"""A pipeline's configuration: what a bot version stores and what a rung of the ladder is."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields

from ladder.errors import InvalidInput
from ladder.models.constraints import Constraint
from ladder.models.registry import BACKENDS
from ladder.models.text_stops import stop_list
from ladder.models.types import GenerationParams
from ladder.pipelines.parsers import ParserSpec

SHOT_MODES = ("fixed", "retrieved")
# No model ladder serves has a longer context; a server also holds a bot to its own, smaller cap.
MAX_TOKENS_CEILING = 131_072
MAX_FEW_SHOT_K = 10_000
MAX_RETRIEVAL_K = 100  # as many passages as one knowledge-base search returns
SEED_LIMIT = 2**63  # seeds lie in [-SEED_LIMIT, SEED_LIMIT): what SQLite, torch and the OpenAI API accept


def _integer(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(f"{name} must be an integer from {lo} to {hi}, not {str(value)[:40]}", param=name)


def _number(name: str, value: object, lo: float, hi: float, *, above_lo: bool = False) -> None:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (lo < value <= hi if above_lo else lo <= value <= hi)
    )
    if not ok:  # NaN fails both comparisons
        span = f"above {lo} and at most {hi}" if above_lo else f"from {lo} to {hi}"
        raise InvalidInput(f"{name} must be a number {span}, not {str(value)[:40]}", param=name)


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
    # Decode under the parser's format (None: yes for label/json/regex, no for free text).
    constrained: bool | None = None
    # A label answer less probable than this is replaced by `abstain_label` (routed to a person).
    abstain_below: float | None = None
    abstain_label: str = "needs_review"

    def __post_init__(self) -> None:
        if isinstance(self.parser, dict):
            try:
                self.parser = ParserSpec(**self.parser)
            except TypeError as e:
                raise InvalidInput(f"parser: {e}; it takes kind, labels, schema, pattern", param="parser") from e
        if not isinstance(self.parser, ParserSpec):
            raise InvalidInput('parser must be an object such as {"kind": "label", "labels": [...]}', param="parser")
        if not self.model or not isinstance(self.model, str):
            raise InvalidInput("a pipeline needs a model (a model name)", param="model")
        self._check_prompt()
        self._check_generation()
        self._check_output()

    def _check_prompt(self) -> None:
        for name in ("system_prompt", "output_instruction", "input_template"):
            if not isinstance(getattr(self, name), str):
                raise InvalidInput(f"{name} must be text", param=name)
        if self.few_shot_mode not in SHOT_MODES:
            raise InvalidInput(f"few_shot_mode must be one of {', '.join(SHOT_MODES)}", param="few_shot_mode")
        if not isinstance(self.few_shot, list):
            raise InvalidInput('few_shot must be a list of {"input": text, "output": text}', param="few_shot")
        for i, ex in enumerate(self.few_shot):
            if (
                not isinstance(ex, dict)
                or not isinstance(ex.get("input"), str)
                or not isinstance(ex.get("output"), str)
            ):
                raise InvalidInput(f'few_shot[{i}] must be {{"input": text, "output": text}}', param="few_shot")
        _integer("few_shot_k", self.few_shot_k, 0, MAX_FEW_SHOT_K)
        if self.input_template and "{input}" not in self.input_template:
            raise InvalidInput("input_template must contain {input}", param="input_template")
        if self.few_shot_mode == "retrieved" and self.few_shot and not self.few_shot_k:
            raise InvalidInput("retrieved few-shot needs few_shot_k >= 1", param="few_shot_k")
        if not isinstance(self.kbs, list) or not all(isinstance(k, str) for k in self.kbs):
            raise InvalidInput("kbs must be a list of knowledge-base names", param="kbs")
        _integer("retrieval_k", self.retrieval_k, 1, MAX_RETRIEVAL_K)
        if self.retrieval_threshold is not None:
            _number("retrieval_threshold", self.retrieval_threshold, -1.0, 1.0)

    def _check_generation(self) -> None:
        _integer("max_tokens", self.max_tokens, 1, MAX_TOKENS_CEILING)
        _number("temperature", self.temperature, 0.0, 2.0)
        _number("top_p", self.top_p, 0.0, 1.0, above_lo=True)
        if self.seed is not None:
            _integer("seed", self.seed, -SEED_LIMIT, SEED_LIMIT - 1)
        self.stop = stop_list(self.stop)
        if self.backend is not None and self.backend not in BACKENDS:
            raise InvalidInput(
                f"backend must be one of {', '.join(BACKENDS)} (or unset: the model's own), "
                f"not {str(self.backend)[:40]!r}",
                param="backend",
            )

    def _check_output(self) -> None:
        if self.constrained is not None and not isinstance(self.constrained, bool):
            raise InvalidInput(
                f"constrained must be true or false, not {str(self.constrained)[:40]}", param="constrained"
            )
        if self.constrained and not self.parser.closed:
            raise InvalidInput(
                "constrained: true needs a closed output format (parser label, json or regex); free text has none",
                param="constrained",
            )
        if not isinstance(self.abstain_label, str) or not self.abstain_label.strip():
            raise InvalidInput(
                "abstain_label must be non-empty text (the label for a person to review)", param="abstain_label"
            )
        if self.abstain_below is not None:
            ok = isinstance(self.abstain_below, int | float) and not isinstance(self.abstain_below, bool)
            if not ok or not 0 < self.abstain_below < 1:  # NaN fails the comparison
                raise InvalidInput(
                    f"abstain_below must be a probability above 0 and below 1, not {str(self.abstain_below)[:40]}",
                    param="abstain_below",
                )
            if self.parser.kind != "label":
                raise InvalidInput(
                    "abstain_below needs a label parser: only label answers carry a probability", param="abstain_below"
                )

    @property
    def is_constrained(self) -> bool:
        return self.parser.closed if self.constrained is None else self.constrained

    @property
    def constraint(self) -> Constraint | None:
        """What every request of this pipeline is decoded under (None: free decoding)."""
        return self.parser.constraint() if self.is_constrained else None

    def frame(self, text: str) -> str:
        return self.input_template.replace("{input}", text) if self.input_template else text

    @property
    def params(self) -> GenerationParams:
        return GenerationParams(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop=list(self.stop),
            constraint=self.constraint,
        )

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
