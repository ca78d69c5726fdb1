"""The climb: evaluate each rung on the same test set, stop at the target, fine-tune only with enough data."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ladder.climb.advisor import Advice
from ladder.climb.tune import TuneOutcome, fine_tune
from ladder.errors import InvalidInput, Stopped
from ladder.evals.runner import EvalRun, run_eval
from ladder.evals.testset import TestItem
from ladder.ids import new_id
from ladder.pipelines.config import PipelineConfig
from ladder.pipelines.pipeline import Pipeline
from ladder.settings import get_settings
from ladder.store.db import DEFAULT_PROJECT, get_db


@dataclass
class ClimbOptions:
    task: str | None = None
    kbs: list[str] = field(default_factory=list)
    target: tuple[str, float] | None = None
    model: str | None = None
    all: bool = False
    force_tune: bool = False
    shots: int = 4
    hyperparameters: dict | None = None
    batch_size: int = 16
    latency_sample: int = 8
    regression: bool = True
    forgetting_threshold: float = 0.10
    regression_items: int = 40
    volume: int = 100_000  # requests over which a set-up cost is spread when ranking rungs by cost
    retrieval_k: int = 3
    tune: bool = True
    retrieved: bool = True  # the few-shot rung with the k most similar examples (needs the embedder)
    # Every rung decodes under its output format (label set, schema); False (`--free`) measures them unconstrained.
    constrained: bool = True


@dataclass
class RungResult:
    name: str
    kind: str
    config: PipelineConfig | None = None
    run: EvalRun | None = None
    setup: dict = field(default_factory=dict)
    skipped: str | None = None
    met_target: bool = False

    def value(self, metric: str | None = None) -> float | None:
        if self.run is None:
            return None
        return self.run.metrics.get(metric, self.run.value) if metric else self.run.value


@dataclass
class ClimbResult:
    id: str
    task: str
    target: tuple[str, float] | None
    headline: str
    rungs: list[RungResult]
    advice: Advice
    labels: list[str] = field(default_factory=list)
    recommendation: dict = field(default_factory=dict)
    forgetting: dict | None = None
    loss: list[tuple[int, float]] = field(default_factory=list)
    # The tuned rung's task metric per eval: {"name": "valid_accuracy", "points": [...], "best_step": N}
    tune_metric: dict | None = None
    report_dir: str | None = None
    n_train: int = 0
    n_test: int = 0
    wall_s: float = 0.0


def parse_target(text: str | None) -> tuple[str, float] | None:
    if not text:
        return None
    name, sep, value = text.partition("=")
    try:
        v = float(value)
    except ValueError:
        v = None
    if not sep or v is None:
        raise InvalidInput(f"--target {text!r}: write METRIC=VALUE, e.g. accuracy=0.8", param="target")
    return name.strip(), v / 100 if v > 1 else v


class UI:
    """How a climb talks to its caller: lines of text and progress bars (no-ops by default)."""

    def say(self, text: str) -> None:
        pass

    @contextlib.contextmanager
    def bar(self, description: str, total: int | None) -> Iterator[Callable]:
        yield lambda n=1, total=None, **f: None


def climb(
    train: list[TestItem],
    test: list[TestItem],
    opts: ClimbOptions | None = None,
    *,
    ui: UI | None = None,
    project_id: str = DEFAULT_PROJECT,
    should_stop: Callable[[], bool] | None = None,
    save: Callable[[ClimbResult, list[EvalRun]], None] | None = None,
) -> ClimbResult:
    """Climb the rungs on `test`, one at a time in ladder order (ladder.climb.plan); every eval run and
    the climb are stored together at the end.

    `should_stop` is asked before each rung and between the items of its eval (`Stopped` ends the
    climb, nothing stored; a fine-tune rung already started runs to its end first). `save(result,
    runs)` replaces the default storing (`save_climb`), e.g. to store inside the caller's transaction.
    """
    from ladder.climb.plan import Ladder, plan
    from ladder.climb.steps import run_step

    opts, ui = opts or ClimbOptions(), ui or UI()
    t_start = time.perf_counter()
    lad = Ladder.build(train, test, opts, project_id, new_id("climb"))
    done: dict = {}
    runs: list[EvalRun] = []  # stored with the climb, in one transaction, once it is complete
    while not (now := plan(lad, done)).complete:
        if should_stop and should_stop():
            raise Stopped(f"climb {lad.ctx.climb_id} stopped after {len(now.rungs)} rung(s)")
        step = now.ready[0]
        res = run_step(step, lad.ctx, train, test, ui=ui, number=len(now.rungs) + 1, should_stop=should_stop)
        done[step.name] = res
        runs += res.runs
    result = assemble(lad, now.rungs, done, time.perf_counter() - t_start)
    if save is None:
        save_climb(result, runs, project_id)
    else:
        save(result, runs)
    return result


def assemble(lad, rungs: list[RungResult], done: dict, wall_s: float) -> ClimbResult:
    """The finished climb from its rungs and step results (name -> StepResult): recommendation and report."""
    from ladder.climb.recommend import recommend
    from ladder.climb.report import write_report

    opts = lad.opts
    result = ClimbResult(
        lad.ctx.climb_id,
        lad.task,
        opts.target,
        lad.headline,
        list(rungs),
        lad.advice,
        lad.labels,
        n_train=len(lad.train),
        n_test=lad.n_test,
    )
    tuned = done.get("fine-tune")
    if tuned is not None:
        result.loss, result.tune_metric = tuned.loss, tuned.tune_metric
    if "regression" in done:
        result.forgetting = done["regression"].forgetting
    result.recommendation = recommend(result, volume=opts.volume)
    result.wall_s = wall_s
    result.report_dir = str(write_report(result))
    return result


def workdir_for(climb_id: str) -> Path:
    """Where a climb's fine-tune writes its training file (the shared dir, which every worker reaches)."""
    return get_settings().shared_dir / "climbs" / climb_id


def _tune(
    train,
    base: PipelineConfig,
    opts: ClimbOptions,
    workdir,
    ui: UI,
    project_id: str,
    job_id: str | None = None,
    on_job: Callable[[str], None] | None = None,
) -> TuneOutcome:
    ui.say("rung: fine-tune (LoRA)")
    stack = contextlib.ExitStack()

    def progress(description: str, total: int | None):
        return stack.enter_context(ui.bar(description, total))

    with stack:
        # Trained with the short prompt it will be served with: the cost win of a tuned model.
        system = base.system_prompt
        return fine_tune(
            train,
            system,
            model=base.model,
            frame=base.frame,
            workdir=workdir,
            hyperparameters=opts.hyperparameters,
            progress=progress,
            project_id=project_id,
            parser=base.parser,  # the task metric during training, on the label set / schema it is served with
            job_id=job_id,
            on_job=on_job,
        )


def _forgetting(
    base_model: str, tuned_model: str, opts: ClimbOptions, ui: UI, project_id: str, runs: list[EvalRun]
) -> dict | None:
    """The tuned model against its base on a general regression set; a big drop is catastrophic forgetting."""
    from ladder.climb.regression import regression_items

    items = regression_items(opts.regression_items)
    if not items:
        return None
    ui.say(f"regression check: {len(items)} general questions, base vs tuned")
    out = {}
    for who, m in (("base", base_model), ("tuned", tuned_model)):
        cfg = PipelineConfig(model=m, max_tokens=12)
        run = run_eval(
            Pipeline(cfg, project_id=project_id),
            items,
            metrics=["contains", "rouge_l"],
            batch_size=opts.batch_size,
            latency_sample=0,
            name=f"regression:{who}",
            project_id=project_id,
            store=False,
        )
        runs.append(run)
        out[who] = run
    from ladder.evals.metrics import paired_bootstrap

    a = [x for x in _item_scores(out["base"])]
    b = [x for x in _item_scores(out["tuned"])]
    diff = paired_bootstrap(a, b)
    drop = out["base"].value - out["tuned"].value
    flagged = drop > opts.forgetting_threshold and diff["significant"]
    return {
        "base": out["base"].value,
        "tuned": out["tuned"].value,
        "drop": drop,
        "diff": diff,
        "threshold": opts.forgetting_threshold,
        "catastrophic": flagged,
        "n": len(items),
        "metric": "answer contained",
    }


def _item_scores(run: EvalRun) -> list[float]:
    from ladder.evals.metrics import contains

    return [contains(r["output"], r["reference"]) for r in run.rows]


def save_climb(result: ClimbResult, runs: list[EvalRun], project_id: str) -> None:
    """The climb's eval runs and its row, in one transaction (joins the caller's, if one is open)."""
    from ladder.climb.store import insert_climb
    from ladder.evals.store import save_run

    rungs = [
        {
            "name": r.name,
            "kind": r.kind,
            "run": r.run.id if r.run else None,
            "value": r.value(result.headline),
            "skipped": r.skipped,
            "setup": r.setup,
        }
        for r in result.rungs
    ]
    summary = {
        "task": result.task,
        "headline": result.headline,
        "rungs": rungs,
        "recommendation": result.recommendation,
        "forgetting": _plain(result.forgetting),
    }
    with get_db().tx():
        for run in runs:
            save_run(run, project_id=project_id)
        insert_climb(result.id, project_id, result.target, summary, result.report_dir)


def _plain(f: dict | None) -> dict | None:
    if not f:
        return f
    return {k: v for k, v in f.items() if not isinstance(v, EvalRun)}
