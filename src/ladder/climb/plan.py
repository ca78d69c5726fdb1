"""The ladder as steps: which rungs can run now, given the ones finished (one rule for both ways to climb).

`ladder climb` runs the first ready step, then asks again (so its rungs run in ladder order, one at
a time); a queued climb (ladder.queue.climbs) queues every ready step as a task of its own and asks
again as they finish. The stop rule makes the walk strictly sequential when a target is given
(without `--all`): nothing after a rung is known until it has finished. Without it the prompt rungs
and the fine-tune are independent and ready together; RAG waits for the prompt rungs (it extends the
best of them), fine-tune + RAG and the regression check wait for the fine-tune.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ladder.climb import tasks as T
from ladder.climb.advisor import TASK_MINIMUMS, Advice, Answers, advise
from ladder.errors import InvalidInput
from ladder.evals.testset import TestItem
from ladder.pipelines.config import PipelineConfig
from ladder.store.db import DEFAULT_PROJECT


@dataclass
class Step:
    """One thing to run: a rung's eval (`config`), the fine-tune (trains from `config`, then evaluates the
    tuned model), or the regression check of a tuned model (`kind` "regression", `tuned_model`)."""

    name: str
    kind: str
    config: PipelineConfig | None = None
    setup: dict = field(default_factory=dict)  # fine-tune + rag: the fine-tune's set-up cost, carried over
    tuned_model: str | None = None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "config": self.config.as_dict() if self.config else None,
            "setup": self.setup,
            "tuned_model": self.tuned_model,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Step:
        cfg = PipelineConfig.from_dict(d["config"]) if d.get("config") else None
        return cls(d["name"], d["kind"], cfg, d.get("setup") or {}, d.get("tuned_model"))


@dataclass
class RungContext:
    """What every step of one climb shares, small and plain so a rung task carries it to any machine."""

    climb_id: str
    model: str
    metrics: list[str]
    opts: dict  # ClimbOptions as a dict (see options())
    project_id: str = DEFAULT_PROJECT

    def options(self):
        from ladder.climb.runner import ClimbOptions

        d = dict(self.opts)
        if d.get("target") is not None:
            d["target"] = tuple(d["target"])
        return ClimbOptions(**d)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RungContext:
        return cls(**d)


@dataclass
class Ladder:
    """A climb before its first rung: the task, the label set, the zero-shot pipeline, the metrics."""

    ctx: RungContext
    opts: object  # ClimbOptions
    task: str
    headline: str
    labels: list[str]
    advice: Advice
    base: PipelineConfig
    train: list[TestItem]
    n_test: int

    @classmethod
    def build(cls, train: list[TestItem], test: list[TestItem], opts, project_id: str, climb_id: str) -> Ladder:
        from ladder.settings import get_settings

        if not train or not test:
            raise InvalidInput("the ladder needs a training set and a test set with at least one item each")
        task = T.check_task(opts.task) if opts.task else T.infer_task(train)
        model = opts.model or get_settings().default_model
        headline = opts.target[0] if opts.target else T.HEADLINE[task]
        labels = T.label_set(train, test) if task == "classification" else []
        advice = advise(
            Answers(
                task=task if task in TASK_MINIMUMS else "open", knowledge_external=bool(opts.kbs), examples=len(train)
            )
        )
        base = T.zero_shot_config(task, train, model, labels, project_id).replace(
            retrieval_k=opts.retrieval_k,
            constrained=None if opts.constrained else False,  # None: the format's default (closed formats on)
        )
        metrics = [headline] + [m for m in metrics_for(task, bool(opts.kbs), test) if m != headline]
        plain = asdict(opts)
        ctx = RungContext(climb_id, model, metrics, plain, project_id)
        return cls(ctx, opts, task, headline, labels, advice, base, train, len(test))


def metrics_for(task: str, rag: bool, test: list[TestItem]) -> list[str]:
    base = {
        "classification": ["accuracy", "macro_f1", "format"],
        "extraction": ["field_f1", "field_precision", "field_recall", "format"],
    }.get(task, ["rouge_l", "exact_match"])
    if rag:
        base += ["citation_validity"] + (["recall_at_k"] if any(t.sources for t in test) else [])
    return base


@dataclass
class Plan:
    ready: list[Step]  # steps that can run now and have no result yet, in ladder order
    rungs: list  # RungResult: the climb's finished and skipped rungs, in ladder order

    @property
    def complete(self) -> bool:
        return not self.ready


class _Walk:
    def __init__(self, done: dict, stop_rule: bool):
        self.done, self.stop_rule = done, stop_rule
        self.ready: list[Step] = []
        self.rungs: list = []

    def take(self, step: Step):
        """The step's result when it has one; otherwise it is ready (and None)."""
        res = self.done.get(step.name)
        if res is None:
            self.ready.append(step)
            return None
        if res.rung is not None:
            self.rungs.append(res.rung)
        return res

    def halted(self) -> bool:
        """The stop rule fired, or cannot be told yet (a rung before this point has no result)."""
        return self.stop_rule and (bool(self.ready) or any(r.met_target for r in self.rungs))


def plan(lad: Ladder, done: dict) -> Plan:
    """The ready steps and the rungs so far, given `done` (step name -> StepResult)."""
    from ladder.climb.runner import RungResult

    o, base, train = lad.opts, lad.base, lad.train
    w = _Walk(done, stop_rule=bool(o.target) and not o.all)
    k = max(1, o.shots)
    fixed = [T.shot(t) for t in T.stratified(train, k, lad.task == "classification")]
    prompts = [
        Step("prompt", "prompt", base),
        Step(f"few-shot fixed k={k}", "few-shot", base.replace(few_shot=fixed, few_shot_k=0)),
    ]
    if o.retrieved:
        pool = [T.shot(t) for t in train]
        retrieved = base.replace(few_shot=pool, few_shot_mode="retrieved", few_shot_k=k)
        prompts.append(Step(f"few-shot retrieved k={k}", "few-shot", retrieved))
    for step in prompts:
        if w.halted():
            return Plan(w.ready, w.rungs)
        w.take(step)
    if o.kbs and not w.halted() and all(s.name in done for s in prompts):
        ran = [r for r in w.rungs if r.run is not None and r.kind in ("prompt", "few-shot")]
        best = max(ran, key=lambda r: (r.value(lad.headline), -w.rungs.index(r)))
        w.take(Step("rag", "rag", best.config.replace(kbs=list(o.kbs))))
    if w.halted():
        return Plan(w.ready, w.rungs)
    minimum = lad.advice.minimum
    if not o.tune:
        w.rungs.append(RungResult("fine-tune", "fine-tune", skipped="not run (switched off)"))
    elif len(train) < minimum and not o.force_tune:
        w.rungs.append(
            RungResult(
                "fine-tune",
                "fine-tune",
                skipped=(
                    f"not run: {len(train)} training examples is below the {lad.task} minimum of {minimum} "
                    "(--force-tune to run it anyway)"
                ),
            )
        )
    else:
        tuned = w.take(Step("fine-tune", "fine-tune", base))
        if tuned is not None and tuned.rung.run is not None:
            cfg, setup = tuned.rung.config, tuned.rung.setup
            if o.kbs and not w.halted():
                w.take(Step("fine-tune + rag", "fine-tune + rag", cfg.replace(kbs=list(o.kbs)), setup))
            if o.regression:  # whatever the stop rule says: it qualifies the tuned rungs
                w.take(Step("regression", "regression", tuned_model=cfg.model))
    return Plan(w.ready, w.rungs)
