"""Running one step of a climb (a rung's eval, the fine-tune, the regression check), and what it hands back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ladder.climb.plan import RungContext, Step
from ladder.errors import Stopped
from ladder.evals.runner import EvalRun, run_eval
from ladder.evals.testset import TestItem
from ladder.pipelines.pipeline import Pipeline


@dataclass
class StepResult:
    rung: object | None  # RungResult; None for the regression check
    runs: list[EvalRun] = field(default_factory=list)  # to store with the climb (or with the rung task)
    loss: list[tuple[int, float]] = field(default_factory=list)
    tune_metric: dict | None = None
    forgetting: dict | None = None

    def as_dict(self) -> dict:
        """The result as a rung task stores it: eval runs by id (they are stored beside it)."""
        r = self.rung
        rung = None
        if r is not None:
            rung = {
                "name": r.name,
                "kind": r.kind,
                "config": r.config.as_dict() if r.config else None,
                "run": r.run.id if r.run else None,
                "setup": r.setup,
                "skipped": r.skipped,
                "met_target": r.met_target,
            }
        return {
            "rung": rung,
            "runs": [run.id for run in self.runs],
            "loss": [list(p) for p in self.loss],
            "tune_metric": self.tune_metric,
            "forgetting": self.forgetting,
        }

    @classmethod
    def from_dict(cls, d: dict, load_run: Callable[[str], EvalRun]) -> StepResult:
        """Back from a rung task's result; `load_run(id)` reads a stored eval run."""
        from ladder.climb.runner import RungResult
        from ladder.pipelines.config import PipelineConfig

        rung = None
        if d.get("rung"):
            r = d["rung"]
            rung = RungResult(
                r["name"],
                r["kind"],
                PipelineConfig.from_dict(r["config"]) if r.get("config") else None,
                load_run(r["run"]) if r.get("run") else None,
                r.get("setup") or {},
                r.get("skipped"),
                bool(r.get("met_target")),
            )
        tm = d.get("tune_metric")
        if tm:
            tm = {**tm, "points": [tuple(p) for p in tm.get("points") or []]}
        loss = [(int(s), float(v)) for s, v in d.get("loss") or []]
        return cls(rung, [], loss, tm, d.get("forgetting"))


def run_step(
    step: Step,
    ctx: RungContext,
    train: list[TestItem],
    test: list[TestItem],
    *,
    ui=None,
    number: int = 1,
    should_stop: Callable[[], bool] | None = None,
    job_id: str | None = None,
    on_job: Callable[[str], None] | None = None,
) -> StepResult:
    """Run `step` (the `number`th rung) on the climb's data. A fine-tune follows the job `job_id` when
    given (a rung task run again) instead of starting one, and reports the job it starts to `on_job`."""
    from ladder.climb.runner import UI, RungResult, _forgetting, _tune

    ui = ui or UI()
    opts = ctx.options()
    out = StepResult(None)

    def check() -> None:
        if should_stop and should_stop():
            raise Stopped(f"climb {ctx.climb_id} stopped at {step.name}")

    def evaluate(name: str, kind: str, cfg, setup: dict | None = None) -> RungResult:
        check()
        ui.say(f"rung {number}: {name}")
        metric = ctx.metrics[0]
        with ui.bar(f"eval {name}", len(test)) as advance:
            run = run_eval(
                Pipeline(cfg, project_id=ctx.project_id),
                test,
                metrics=_usable(ctx.metrics, cfg),
                batch_size=opts.batch_size,
                latency_sample=opts.latency_sample,
                name=f"{ctx.climb_id}:{name}",
                on_progress=lambda n: advance(n),
                should_stop=should_stop,
                project_id=ctx.project_id,
                store=False,
            )
        out.runs.append(run)
        met = bool(opts.target) and run.metrics.get(metric, run.value) >= opts.target[1] - 1e-12
        lo, hi = run.ci
        ui.say(
            f"  {metric} {run.metrics.get(metric, run.value):.3f} (95% CI {lo:.3f}-{hi:.3f}), "
            f"format {run.format_compliance:.0%}, {run.cached} cached"
        )
        return RungResult(name, kind, cfg, run, setup or {}, met_target=met)

    if step.kind == "regression":
        check()
        out.forgetting = _forgetting(ctx.model, step.tuned_model, opts, ui, ctx.project_id, out.runs)
    elif step.kind == "fine-tune":
        from ladder.climb.runner import workdir_for

        check()
        base = step.config
        tuned = _tune(train, base, opts, workdir_for(ctx.climb_id), ui, ctx.project_id, job_id=job_id, on_job=on_job)
        out.loss = tuned.loss
        if tuned.metric:
            out.tune_metric = {"name": tuned.metric_name, "points": tuned.metric, "best_step": tuned.best_step}
        setup = {
            "seconds": tuned.seconds,
            "trained_tokens": tuned.trained_tokens,
            "cost_usd": tuned.cost_usd,
            "job_id": tuned.job_id,
            "model": tuned.model,
        }
        if tuned.model is None:
            out.rung = RungResult("fine-tune", "fine-tune", setup=setup, skipped=tuned.error)
        else:
            # The tuned model learned the labels: it is served without the long label listing.
            out.rung = evaluate("fine-tune", "fine-tune", base.replace(model=tuned.model, output_instruction=""), setup)
    else:
        out.rung = evaluate(step.name, step.kind, step.config, step.setup)
    return out


def _usable(metrics: list[str], cfg) -> list[str]:
    """RAG metrics only for rungs that retrieve."""
    return [m for m in metrics if cfg.kbs or m not in ("citation_validity", "recall_at_k")]
